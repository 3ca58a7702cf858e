"""The published figures as data: every entry is a real --config best combination, cites a source, and
docs/reference-results.md shows the table rendered from the file."""
import os

from tests.conftest import ROOT
from utils.published import load_published, reference_table
from utils.reference.configs import published_entry


def test_every_entry_resolves_to_a_published_configuration():
    entries, sources = load_published()
    assert len(entries) == 28
    for entry in entries:
        values, source = published_entry(entry["dataset"], entry["model"], entry["buffer_size"])
        assert values and source
        assert entry["source"] in sources and 0 < entry["class_il"] < 100


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
