"""The published figures as data: every entry is a real --config best combination, cites a source, and
docs/reference-results.md shows the table rendered from the file."""
import os

from tests.conftest import ROOT
from utils.published import load_published, reference_table
from utils.reference.configs import published_entry


def test_every_entry_of_the_suites_models_resolves_to_a_published_configuration():
    from utils.reference.figures import in_the_suite

    entries, sources = load_published()
    assert len(entries) == 74 and sum(not in_the_suite(e) for e in entries) == 9 + 4  # GEM, GSS, HAL; GSS, JOINT
    for entry in entries:
        assert entry["source"] in sources and 0 < entry.get("class_il", entry.get("accuracy")) < 100
        if in_the_suite(entry) and (entry["dataset"], entry["model"]) != ("seq-mnist", "joint"):
            values, source = published_entry(entry["dataset"], entry["model"], entry["buffer_size"])
            assert values and source


def test_the_der_releases_smnist_arguments_are_read_and_cited():
    from tests.helpers import parse
    from utils.reference.configs import config_source

    expected = {("der", 200): (0.03, 10, 0.2), ("der", 500): (0.03, 128, 1.0), ("der", 5120): (0.1, 128, 0.5),
                ("er", 200): (0.01, 10, None), ("derpp", 5120): (0.1, 64, 0.2)}
    for (model, buffer_size), (lr, minibatch, alpha) in expected.items():
        args, _, _ = parse("--model", model, "--dataset", "seq-mnist", "--buffer_size", str(buffer_size), "--config",
                           "best")
        assert (args.lr, args.minibatch_size, getattr(args, "alpha", None)) == (lr, minibatch, alpha)
        assert args.n_epochs == 1 and args.batch_size == 10
        assert "tag neurips2020 (commit cb9a36d), key seq-mnist" in config_source(args)
    assert parse("--model", "sgd", "--dataset", "seq-mnist", "--config", "best")[0].lr == 0.03


def test_the_reference_document_shows_the_rendered_table():
    with open(os.path.join(ROOT, "docs", "reference-results.md"), encoding="utf-8") as f:
        assert reference_table(load_published()[0]) in f.read()


def test_xder_table_one_rows_are_complete():
    entries, _ = load_published()
    cifar100 = {(e["model"], e["buffer_size"]): e for e in entries if e["dataset"] == "seq-cifar100"}
    for model in ("er", "er_ace", "der", "derpp", "xder"):
        for buffer_size in (500, 2000):
            assert "class_il_forgetting" in cifar100[(model, buffer_size)]
    assert cifar100[("xder", 500)]["class_il"] == 49.93 and cifar100[("xder", 2000)]["class_il_forgetting"] == 12.58


def test_the_command_prints_the_rendered_table():
    import subprocess
    import sys

    printed = subprocess.run([sys.executable, "-m", "utils.published"], cwd=ROOT, capture_output=True, text=True)
    assert printed.returncode == 0 and printed.stdout == reference_table(load_published()[0]) + "\n"
