"""--config best: lookup, override order (explicit flag > config > defaults), clear errors, and the source
recorded beside the run, outside its key (lines written before that still match their reruns and groups)."""
import json
import os
import shutil

import pytest

import main
from tests.helpers import read_records, run_main
from tests.test_datasets import write_cifar10
from utils.plumbing.identity import run_key_hash
from utils.reference.configs import CONFIG_FILE, ConfigError, config_source, published_entry
from utils.study.groups import group_key
from utils.sweep import finished_keys


def parse(*argv):
    args, _, _ = main.parse_args(list(argv))
    return args


def test_config_fills_published_values():
    args = parse("--model", "derpp", "--dataset", "seq-cifar10", "--buffer_size", "500", "--config", "best")
    assert (args.lr, args.alpha, args.beta, args.n_epochs, args.batch_size, args.minibatch_size) == \
        (0.03, 0.2, 0.5, 50, 32, 32)
    assert "Buzzega" in config_source(args)


def test_explicit_flags_override_the_config():
    args = parse("--model", "derpp", "--dataset", "seq-cifar10", "--buffer_size", "500", "--config", "best",
                 "--alpha", "0.7", "--lr=0.05", "--n_epochs", "1")
    assert (args.alpha, args.lr, args.n_epochs, args.beta) == (0.7, 0.05, 1, 0.5)


def test_config_overrides_model_and_dataset_defaults():
    plain = parse("--model", "xder", "--dataset", "seq-cifar100", "--buffer_size", "2000")
    best = parse("--model", "xder", "--dataset", "seq-cifar100", "--buffer_size", "2000", "--config", "best")
    assert (plain.alpha, plain.margin, plain.eta) == (0.3, 0.3, 0.1)
    assert (plain.past_constraint, plain.align_bn, plain.simclr_num_aug) == (False, True, 4)
    assert (best.alpha, best.beta, best.margin, best.eta, best.lr) == (0.6, 0.9, 0.2, 0.01, 0.03)
    assert best.lr_milestones == [35, 45] and best.n_epochs == 50
    assert (best.past_constraint, best.align_bn, best.simclr_num_aug, best.lr_gamma) == (True, False, 2, 0.1)


def test_xder_cifar100_500_is_mammoths_reproducibility_config():
    """Mammoth 4688c67: models/config/xder.yaml and datasets/configs/seq-cifar100/xder.yaml."""
    best = parse("--model", "xder", "--dataset", "seq-cifar100", "--buffer_size", "500", "--config", "best")
    assert (best.alpha, best.beta, best.lr, best.dp_weight, best.simclr_num_aug) == (0.3, 0.8, 0.03, 3000, 4)
    constraints = (best.eta, best.margin, best.past_constraint, best.future_constraint, best.align_bn)
    assert constraints == (0.1, 0.3, False, True, True)
    assert (best.batch_size, best.minibatch_size, best.n_epochs, best.lr_milestones, best.lr_gamma) == \
        (32, 32, 50, [35, 45], 0.2)
    assert "4688c67" in config_source(best)
    explicit = parse("--model", "xder", "--dataset", "seq-cifar100", "--buffer_size", "500", "--config", "best",
                     "--past_constraint", "--no-align_bn")
    assert explicit.past_constraint and not explicit.align_bn


def test_buffer_free_models_use_the_any_entry():
    assert parse("--model", "sgd", "--dataset", "seq-tinyimg", "--config", "best").lr == 0.03


def test_missing_entry_is_one_clear_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse("--model", "er_ace", "--dataset", "seq-cifar10", "--buffer_size", "200", "--config", "best")
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "--config" in err and "er_ace" in err and "der 200" in err


def test_every_entry_cites_a_source_and_names_real_flags():
    with open(CONFIG_FILE, encoding="utf-8") as f:
        table = json.load(f)
    sources = table.pop("_sources")
    for dataset, models in table.items():
        for model, sizes in models.items():
            for size, entry in sizes.items():
                assert entry["source"] in sources
                flags = ["--model", model, "--dataset", dataset, "--buffer_size", "0" if size == "any" else size]
                args = parse(*flags, "--config", "best")
                assert all(getattr(args, key) == value for key, value in entry.items() if key != "source")
    with pytest.raises(ConfigError):
        published_entry("seq-cifar10", "xder", 200)
    assert {"seq-mnist", "seq-cifar10", "seq-tinyimg", "seq-cifar100", "mnist-360"} == set(table)


# The run key holds flags only: the --config source is recorded beside the run

OLD_LINE = os.path.join(os.path.dirname(__file__), "data", "config-best-line-before-the-key-fix.jsonl")
OLD_RUN = ["--model", "er", "--dataset", "seq-cifar10", "--buffer_size", "200", "--config", "best", "--n_epochs", "1",
           "--nf", "8", "--batch_size", "10", "--threads", "1", "--quiet"]  # the flags that wrote OLD_LINE (f53969b)


def test_the_source_is_beside_the_run_and_rewording_it_keeps_the_key(tmp_path, monkeypatch):
    flags = ("--model", "derpp", "--dataset", "seq-cifar10", "--buffer_size", "500", "--config", "best")
    before = run_key_hash(parse(*flags))
    with open(CONFIG_FILE, encoding="utf-8") as f:
        table = json.load(f)
    table["_sources"]["der2020"] = "Buzzega et al. (2020), reworded"
    reworded = tmp_path / "best_configs.json"
    reworded.write_text(json.dumps(table))
    monkeypatch.setattr("utils.reference.configs.CONFIG_FILE", str(reworded))
    args = parse(*flags)
    assert run_key_hash(args) == before and "config_source" not in vars(args)
    assert config_source(args) == "Buzzega et al. (2020), reworded"


def copy_old_line(results):
    os.makedirs(results)
    shutil.copy(OLD_LINE, os.path.join(results, "results.jsonl"))


def test_a_line_written_before_the_fix_is_found_by_its_rerun(tmp_path, capsys):
    old = json.loads(open(OLD_LINE, encoding="utf-8").read())
    assert "config_source" in old["args"] and old["key_hash"] != run_key_hash(parse(*OLD_RUN))
    write_cifar10(tmp_path / "data", per_file=10)
    copy_old_line(tmp_path / "results")
    assert main.main(OLD_RUN + ["--data_path", str(tmp_path / "data"), "--results_path",
                                str(tmp_path / "results")]) == 0
    assert "already has a result" in capsys.readouterr().out
    assert len(read_records(tmp_path / "results")) == 1
    assert finished_keys(str(tmp_path / "results" / "results.jsonl")) >= {run_key_hash(parse(*OLD_RUN))}


def test_old_and_new_lines_of_one_experiment_form_one_group(tmp_path):
    write_cifar10(tmp_path / "data", per_file=10)
    copy_old_line(tmp_path / "results")
    new = run_main(tmp_path, *OLD_RUN, "--seed", "1")
    assert new["config_source"].startswith("Buzzega") and "config_source" not in new["args"]
    old, new = read_records(tmp_path / "results")
    assert group_key(old) == group_key(new)
