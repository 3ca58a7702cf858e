"""python -m utils.report results/results.jsonl [...]: mean ± std over seeds of every group of runs
that differ only in seed, as markdown, LaTeX or CSV, the papers' pivot layout, a baseline comparison
with Welch's t-test, and plots. Each run key counts once; duplicate and unreadable lines are named."""
import argparse
import os
import sys

from utils.plumbing.console import count
from utils.plumbing.files import folder_problem
from utils.plumbing.parser import ArgumentParser, did_you_mean

PROG = "python -m utils.report"
STD_NOTE = "mean ± sample standard deviation (n−1) over seeds; n runs per group"


def build_parser():
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", help="results.jsonl files")
    parser.add_argument("--format", choices=("markdown", "latex", "csv"), default="markdown")
    parser.add_argument("--pivot", action="store_true", help="rows model × mask, columns buffer size × setting "
                                                             "(markdown and LaTeX)")
    parser.add_argument("--columns", nargs="+", default=[], metavar="FLAG",
                        help="with --baseline: one row per cure (what a group changes from its baseline), one "
                             "column per value of the FLAGs (e.g. model, or model buffer_size), cells mean ± std "
                             "(Δ, * where the corrected p < 0.05, that p)")
    parser.add_argument("--where", nargs="+", default=[], metavar="KEY=VALUE",
                        help="keep only matching runs; KEY=V1,V2 keeps runs with any of the values")
    parser.add_argument("--ignore", nargs="+", default=[], metavar="FLAG", help="merge groups over these flags")
    parser.add_argument("--baseline", nargs="+", default=[], metavar="KEY=VALUE",
                        help="compare each group's final Class-IL with the group that differs only in these flags "
                             "(e.g. mask=none): difference of means with its 95 %% interval, Hedges' g, Welch's "
                             "t-test p and p corrected for the table's number of tests (--correction); * marks a "
                             "corrected p < 0.05 (not with --pivot)")
    parser.add_argument("--correction", choices=("holm", "bh", "none"), default="holm",
                        help="how --baseline's p-values are corrected for the number of tests in the table: Holm "
                             "(default; the family-wise error), bh (Benjamini-Hochberg; the false discovery rate) "
                             "or none")
    parser.add_argument("--versus", nargs=2, metavar=("CURE", "OTHER"),
                        help="head to head: each group of one cure beside the group of another with the same flags "
                             "outside the cures' (model, dataset, buffer, ...), e.g. --versus 'mask=general "
                             "mask_value=-3' head=fno; each CURE is KEY=VALUE conditions in one argument; Δ, 95 %% "
                             "interval, g, p and corrected p of --compare")
    parser.add_argument("--compare", default="class_il_final_avg", metavar="METRIC",
                        help="the metric --baseline compares (default: class_il_final_avg; also task_il_final_avg, "
                             "class_il_forgetting, recency_bias, online_acc, anytime_acc, a_auc, min_acc, wc_acc, "
                             "stability_gap, ...)")
    parser.add_argument("--conflicts", choices=("refuse", "first"), default="refuse",
                        help="lines of one run key whose results differ: refuse to report (default), or keep "
                             "the earliest line of each key and say so")
    parser.add_argument("--published", action="store_true",
                        help="a column with the paper's Class-IL beside each group run with --config best whose "
                             "dataset, model and buffer match a published figure (utils/reference/"
                             "published_results.json; not with --pivot, --columns or --versus)")
    parser.add_argument("--plots", metavar="DIR", help="write PNG figures into DIR")
    return parser


def check_options(parser, options):
    """Refuse, before reading anything, options that cannot be honoured together."""
    for path in options.results:
        if not os.path.isfile(path):
            parser.error(f"argument results: {path!r} is not a file")
    for flag, conditions in (("--where", options.where), ("--baseline", options.baseline)):
        for condition in conditions:
            if "=" not in condition or not condition.partition("=")[0]:
                parser.error(f"argument {flag}: {condition!r} is not KEY=VALUE")
    if options.pivot and options.format == "csv":
        parser.error("argument --pivot: not allowed with --format csv (CSV has one row per group and a column "
                     "per flag; pivot it in your spreadsheet)")
    if options.pivot and options.baseline:
        parser.error("argument --baseline: not allowed with --pivot (the pivot has no comparison columns); "
                     "drop --pivot to see Δ and p")
    if options.columns and not options.baseline:
        parser.error("argument --columns: not allowed without --baseline (its rows are what each group changes "
                     "from its baseline)")
    if options.columns and (options.pivot or options.format == "csv"):
        parser.error("argument --columns: not allowed with --pivot or --format csv (one layout at a time)")
    from utils.study.groups import METRIC
    if options.compare not in METRIC:
        parser.error(f"argument --compare: {options.compare!r} is not allowed: choose from {', '.join(METRIC)}"
                     f"{did_you_mean(options.compare, METRIC)}")
    if options.compare != "class_il_final_avg" and not (options.baseline or options.versus):
        parser.error("argument --compare: not allowed without --baseline or --versus, whose comparison it chooses")
    if options.published and (options.pivot or options.columns or options.versus):
        parser.error("argument --published: not allowed with --pivot, --columns or --versus (its column is in the "
                     "row table and the CSV)")
    if options.versus and (options.baseline or options.pivot or options.columns or options.format == "csv"):
        parser.error("argument --versus: not allowed with --baseline, --pivot, --columns or --format csv (one layout "
                     "at a time)")
    options.versus = [cure.split() for cure in options.versus] if options.versus else None
    for cure in options.versus or ():
        for condition in cure or ["(empty)"]:
            if "=" not in condition or not condition.partition("=")[0]:
                parser.error(f"argument --versus: {condition!r} is not KEY=VALUE")
    if options.plots and folder_problem(options.plots):
        parser.error(f"argument --plots: {options.plots!r} is not allowed: {folder_problem(options.plots)}")


def say(message):
    print(f"warning: {message}", file=sys.stderr)


def read_runs(parser, options):
    """Each run key's record once, after naming unreadable lines and dropped duplicates."""
    from utils.plumbing.results_file import describe_bad_lines, read_lines
    from utils.study.runs import describe_repeats, describe_run, unique_runs, where

    lines, bad = read_lines(options.results)
    if bad:
        say(f"{count(len(bad), 'line')} could not be read and {'is' if len(bad) == 1 else 'are'} not in the tables: "
            f"{describe_bad_lines(bad)}")
    if not lines:
        empty = all(os.path.getsize(path) == 0 for path in options.results)
        parser.error(f"argument results: no runs to report: {', '.join(options.results)} "
                     f"{'is empty' if empty else 'holds no readable results line'}")
    lines, dropped, conflicts = unique_runs(lines)
    if conflicts:
        first = conflicts[0]
        text = (f"{count(len(conflicts), 'line')} repeat{'s' if len(conflicts) == 1 else ''} a run key with other "
                f"results: "
                f"{describe_repeats(conflicts)}; the first is {describe_run(first.line.record)}")
        if options.conflicts == "refuse":
            parser.error(f"argument results: {text}; remove the wrong lines, or keep the earliest line of each key "
                         f"with --conflicts first")
        say(f"{text}; kept the earliest line of each ({where(first.first)} ...)")
    if dropped:
        say(f"dropped {count(len(dropped), 'duplicate line')} (the same run key and results "
            f"as an earlier line): {describe_repeats(dropped)}")
    return [line.record for line in lines]


def check_flags(parser, records, options):
    """Every flag named by --where, --ignore and --baseline is a flag of some run."""
    known = set().union(*(record["args"] for record in records))
    named = [("--where", c.partition("=")[0]) for c in options.where]
    named += [("--ignore", name) for name in options.ignore]
    named += [("--baseline", c.partition("=")[0]) for c in options.baseline]
    named += [("--columns", name) for name in options.columns]
    named += [("--versus", c.partition("=")[0]) for cure in options.versus or () for c in cure]
    for flag, name in named:
        if name not in known:
            parser.error(f"argument {flag}: {name!r} is not a flag of any run in the results"
                         f"{did_you_mean(name, known) or ''}")
    if "seed" in options.ignore:
        parser.error("argument --ignore: 'seed' is not allowed: groups always merge over seeds")


def check_where(parser, records, where):
    """A --where condition that no run holds on its own is named, with the values the runs have and the closest."""
    from utils.study.groups import matches

    for condition in where:
        if not any(matches(record, [condition]) for record in records):
            name, _, wanted = condition.partition("=")
            values = sorted({str(record["args"].get(name)) for record in records})
            shown = ", ".join(values[:12]) + (f" and {len(values) - 12} more" if len(values) > 12 else "")
            parser.error(f"argument --where: no run has {condition} ({name} there: {shown})"
                         f"{did_you_mean(wanted, values)}")


def check_baseline(parser, groups, baseline):
    """Each KEY=VALUE of --baseline is held by some group of the table."""
    from utils.study.groups import matches_any

    for condition in baseline:
        name, _, wanted = condition.partition("=")
        if not any(matches_any(g.flags.get(name), wanted) for g in groups):
            values = sorted({str(g.flags.get(name)) for g in groups})
            parser.error(f"argument --baseline: no run in the table has {condition} ({name} there: "
                         f"{', '.join(values)}){did_you_mean(wanted, values)}")


NEEDS = {"anytime_acc": "--eval_every", "a_auc": "--eval_every", "min_acc": "--eval_every", "wc_acc": "--eval_every",
         "stability_gap": "--eval_every", "gap_recovered": "--eval_every", "class_il_fwt": "--eval_future"}


def check_compared(parser, groups, compared):
    """--compare names a figure that some run of the table has."""
    if compared != "class_il_final_avg" and all(g.mean_std(compared)[0] is None for g in groups):
        needs = f"; runs record it with {NEEDS[compared]}" if compared in NEEDS else ""
        parser.error(f"argument --compare: no run in the table has {compared}{needs}")


def main(argv=None):
    parser = build_parser()
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    check_options(parser, options)
    from utils.study.groups import build_groups
    from utils.study.tables import (
        Ambiguous,
        CellTaken,
        column_rows,
        comparisons,
        configs_note,
        csv_table,
        group_rows,
        health_note,
        pivot_rows,
        render,
        tests_note,
        versus_rows,
    )

    records = read_runs(parser, options)
    check_flags(parser, records, options)
    groups = build_groups(records, options.ignore, options.where)
    if not groups:
        check_where(parser, records, options.where)
        parser.error(f"no runs match --where {' '.join(options.where)} together")
    check_baseline(parser, groups, options.baseline)
    check_compared(parser, groups, options.compare)
    found = (comparisons(groups, options.baseline, options.compare, options.correction,
                         every_group=build_groups(records, options.ignore)) if options.baseline else None)
    published = None
    if options.published:
        from utils.reference.figures import load_published
        published = load_published()[0]
    if options.format == "csv":
        print(csv_table(groups, options.baseline, options.compare, found, published), end="")
    else:
        latex = options.format == "latex"
        try:
            if options.versus:
                headers, rows, found = versus_rows(groups, *options.versus, options.compare, latex, options.correction)
                if not rows:
                    parser.error(f"argument --versus: no group of {' '.join(options.versus[0])} has a group of "
                                 f"{' '.join(options.versus[1])} with the same other flags")
            else:
                headers, rows = (pivot_rows(groups, latex) if options.pivot
                                 else column_rows(groups, options.columns, options.baseline, options.compare, latex,
                                                  found)
                                 if options.columns else group_rows(groups, options.baseline, latex, options.compare,
                                                                    found, published))
        except CellTaken as error:
            parser.error(f"argument --columns: {error}; keep one with --where or merge with --ignore")
        except Ambiguous as error:
            parser.error(f"argument --versus: {error}; name the flag that tells them apart in the cure")
        print(render(headers, rows, options.format))
        runs = sum(g.n for g in groups)
        print(f"\n{STD_NOTE}; {count(runs, 'run')} in {count(len(groups), 'group')}")
        if configs_note(groups):
            print(configs_note(groups))
        if found:
            reference = f"the {' '.join(options.versus[1])} group" if options.versus else "the baseline"
            print(tests_note(found, options.correction, columns=bool(options.columns), reference=reference))
            for line in health_note(groups, found):
                print(line)
    if options.plots:
        write_plots(parser, groups, options.plots)
    return 0


def write_plots(parser, groups, directory):
    from utils.study.plots import write_plots as write

    try:
        paths = write(groups, directory)
    except OSError as error:
        parser.error(f"argument --plots: cannot write into {directory!r} ({error.strerror or error})")
    for path in paths:
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    from utils.plumbing.console import run_command

    sys.exit(run_command(main, PROG, on_interrupt="nothing more was written"))
