"""tools/same_results.py: two results files of the same runs agree when only launch fields differ, and a flag added
since is compared at the default that reproduces the runs before it."""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import same_results  # noqa: E402

from tests.helpers import run_main  # noqa: E402


def write(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return str(path)


def test_launch_fields_and_a_later_flag_at_its_default_do_not_differ_but_a_result_does(tmp_path, capsys):
    record = run_main(tmp_path, "--model", "er", "--buffer_size", "20", "--n_epochs", "1")
    older = {**record, "args": {k: v for k, v in record["args"].items() if k != "diagnostics_every"},
             "time_s": record["time_s"] + 1, "run_id": "another"}
    same = write(tmp_path / "a.jsonl", [older])
    assert same_results.main([same, write(tmp_path / "b.jsonl", [record])]) == 0
    moved = json.loads(json.dumps(record))
    moved["class_il"]["matrix"][-1][0] += 1
    assert same_results.main([same, write(tmp_path / "c.jsonl", [moved])]) == 1
    assert "class_il.matrix[4][0]" in capsys.readouterr().out
    other_k = {**record, "args": {**record["args"], "diagnostics_every": 2}}
    assert same_results.main([same, write(tmp_path / "d.jsonl", [other_k])]) == 1
