"""python -m utils.plumbing.flag_reference > docs/flags.md: the flag reference, generated from main.py's parser
(every shared flag by group, then each registered model's, dataset's, mask's and correction's own flags) with
the lines some bad commands really get; tests/test_flag_reference.py checks that docs/flags.md is this output, so
the reference cannot go stale."""
import argparse

from utils.plumbing.cli import PROG, build_parser, parse_args, registries
from utils.plumbing.parser import ArgumentParser, FlagError, HelpFormatter

REFUSED = (["--model", "derr"], ["--model", "der", "--buffer_size", "20", "--mask_value", "nan"],
           ["--model", "er", "--buffer_size", "20", "--alpha", "0.3"],
           ["--model", "er", "--buffer_size", "20", "--mask", "ninf", "--mask_value", "-3"],
           ["--model", "sgd", "--buffer_size", "20"], ["--model", "er", "--buffer_size", "5", "--minibatch_size", "10"],
           ["--model", "er", "--buffer_size", "20", "--levers", "auto", "--compile"])


def value(action):
    """What the flag takes: its choices, the name of its type (the flag types name what they accept), or
    nothing for an on/off flag."""
    if action.nargs == 0:
        return "on/off"
    if action.choices is not None:
        return ", ".join(map(str, action.choices))
    kind = getattr(action.type, "__name__", "text") if action.type else "text"
    return kind + (" ..." if action.nargs in ("*", "+") else "")


def rows(actions, formatter):
    """| flag | value | what it does, ending with its default | for each option of `actions`."""
    lines = []
    for action in actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or action.dest == "help":
            continue
        flag = ", ".join(f"`{option}`" for option in action.option_strings)
        text = formatter._expand_help(action).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {flag} | {value(action)} | {text} |")
    return lines


def table(title, description, actions, formatter):
    body = rows(actions, formatter)
    if not body:
        return []
    return [f"## {title}", "", *([description, ""] if description else []), "| flag | value | meaning |",
            "|---|---|---|", *body, ""]


def refusal(argv):
    try:
        parse_args(argv + ["--results_path", "results"], raise_errors=True)
    except FlagError as error:
        return f"- `python {PROG} {' '.join(argv)}`: `{PROG}: error: {error}`"
    raise ValueError(f"{argv} is not refused")


def markdown():
    parser, _ = build_parser([])
    formatter = HelpFormatter(PROG, width=10_000)
    lines = ["# Flags of main.py", "",
             "Generated from the parser by `python -m utils.plumbing.flag_reference > docs/flags.md` (a test keeps "
             "it equal to the parser). `python main.py --help` prints the same, and `--model NAME --help` (or "
             "`--dataset`, `--mask`, `--calibration`) adds that entry's own flags.", ""]
    for group in parser._action_groups:
        if group.title in ("positional arguments", "options"):
            continue
        lines += table(f"Every run: {group.title}", None, group._group_actions, formatter)
    for registry, _ in registries():
        for name in registry.names():
            scratch = ArgumentParser(add_help=False)
            registry.get(name).add_args(scratch)
            lines += table(f"{registry.kind} {name}", registry.describe(name), scratch._actions, formatter)
    lines += ["## Refused with one line", "",
              "A value or flag that cannot run stops the run before anything is written, exit status 2. What "
              "these commands print:", "", *map(refusal, REFUSED), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
