"""docs/extending.md's model, dataset and mask examples, dropped into a copy of the repo, run."""
import re
import shutil

from tests.conftest import ROOT
from tests.helpers import read_records, run_cli


def example_files():
    """{relative path: code} of docs/extending.md's python blocks whose first line is '# <path>.py'."""
    with open(f"{ROOT}/docs/extending.md", encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)
    return {block.split("\n", 1)[0][2:]: block for block in blocks if re.match(r"# [\w/]+\.py\n", block)}


def test_extending_examples_run_when_dropped_in(tmp_path):
    files = example_files()
    assert set(files) == {"models/er_separate.py", "datasets/seq_digits_halves.py", "utils/core/masks/offset.py"}
    repo = tmp_path / "repo"
    ignored = shutil.ignore_patterns(".git", "__pycache__", "results", "data", ".pytest_cache", ".venv", ".carry",
                                     ".whl")
    shutil.copytree(ROOT, repo, ignore=ignored)
    for path, code in files.items():
        (repo / path).write_text(code, encoding="utf-8")
    result = run_cli("--model", "er_separate", "--dataset", "seq-digits-halves", "--mask", "offset",
                     "--mask_value", "-2", "--buffer_size", "50", "--replay_weight", "0.5", "--quiet",
                     "--results_path", str(tmp_path / "results"), cwd=repo)
    assert result.returncode == 0, result.stderr
    record = read_records(tmp_path / "results")[0]
    assert record["model"] == "er_separate" and record["mask"] == "offset"
    assert len(record["class_il"]["matrix"]) == 2 and record["args"]["replay_weight"] == 0.5
