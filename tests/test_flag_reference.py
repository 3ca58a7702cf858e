"""docs/flags.md is the parser's own reference (utils/plumbing/flag_reference.py), refusals included, so it cannot
go stale: regenerate it with `python -m utils.plumbing.flag_reference > docs/flags.md` when a flag changes."""
import os

from tests.conftest import ROOT
from utils.plumbing.cli import every_option
from utils.plumbing.flag_reference import markdown


def test_docs_flags_is_what_the_parser_says():
    with open(os.path.join(ROOT, "docs", "flags.md"), encoding="utf-8") as f:
        assert f.read() == markdown(), "regenerate: python -m utils.plumbing.flag_reference > docs/flags.md"


def test_every_flag_a_run_can_take_is_in_the_reference():
    text = markdown()
    missing = [option for option in every_option() if f"`{option}`" not in text and option not in ("-h", "--help")]
    assert not missing
    assert "| `--buffer_size` | an integer >= 0 |" in text and "(default: 0)" in text  # 0 is a default, not "none"
