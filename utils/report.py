"""python -m utils.report results/results.jsonl [...]: mean ± std over seeds of every group of runs
that differ only in seed, as markdown, LaTeX or CSV, the papers' pivot layout, a baseline comparison
with Welch's t-test, and plots."""
import argparse
import os
import sys

from utils.args import ArgumentParser

PROG = "python -m utils.report"
STD_NOTE = "mean ± sample standard deviation (n−1) over seeds; n runs per group"


def build_parser():
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="results.jsonl files")
    parser.add_argument("--format", choices=("markdown", "latex", "csv"), default="markdown")
    parser.add_argument("--pivot", action="store_true", help="rows model × mask, columns buffer size × setting")
    parser.add_argument("--where", nargs="+", default=[], metavar="KEY=VALUE", help="keep only matching runs")
    parser.add_argument("--ignore", nargs="+", default=[], metavar="FLAG", help="merge groups over these flags")
    parser.add_argument("--baseline", nargs="+", default=[], metavar="KEY=VALUE",
                        help="compare each group's final Class-IL with the group that differs only in these flags "
                             "(e.g. mask=none): difference of means and Welch's t-test p; * marks p < 0.05")
    parser.add_argument("--plots", metavar="DIR", help="write PNG figures into DIR")
    return parser


def main(argv=None):
    parser = build_parser()
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for path in options.results:
        if not os.path.isfile(path):
            parser.error(f"argument results: {path!r} is not a file")
    for condition in options.where + options.baseline:
        if "=" not in condition:
            parser.error(f"argument --where/--baseline: {condition!r} is not KEY=VALUE")
    from utils.study.groups import build_groups, read_results
    from utils.study.tables import csv_table, group_rows, pivot_rows, render

    groups = build_groups(read_results(options.results), options.ignore, options.where)
    if not groups:
        parser.error("no runs match" + (f" --where {' '.join(options.where)}" if options.where else ""))
    if options.format == "csv":
        print(csv_table(groups), end="")
    else:
        latex = options.format == "latex"
        headers, rows = pivot_rows(groups, latex) if options.pivot else group_rows(groups, options.baseline, latex)
        print(render(headers, rows, options.format))
        print(f"\n{STD_NOTE}; {sum(g.n for g in groups)} runs in {len(groups)} groups")
    if options.plots:
        from utils.study.plots import write_plots
        for path in write_plots(groups, options.plots):
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
