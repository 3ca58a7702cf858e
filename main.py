"""Front door: python main.py --model der --mask general --buffer_size 20 [--help].

Parses the flags, runs them with utils.plumbing.run, and prints what happened; exit status 0 done, 1 result
kept outside the results file, 2 bad input, 3 non-finite loss, 130/143 interrupted."""
import json
import os
import sys
import warnings

from tabulate import tabulate

from utils.core.metrics import SUMMARY_METRICS
from utils.plumbing.cli import PROG, parse_args
from utils.plumbing.console import ClosedReaderTolerant, command_line


def one_line_warnings(message, category, filename, lineno, line=None):
    return f"warning: {message}\n"


def fail(message, status):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args, model_cls, dataset_cls = parse_args(argv)
    warnings.formatwarning = one_line_warnings
    from utils.plumbing.signals import StopSignals

    stdout, sys.stdout = sys.stdout, ClosedReaderTolerant(sys.stdout)
    try:
        with StopSignals() as signals:
            return run(args, argv, model_cls, dataset_cls, signals)
    finally:
        sys.stdout = stdout


def run(args, argv, model_cls, dataset_cls, signals):
    from backbone.heads import HeadError
    from datasets.base import DataError
    from utils.core.training import NumericsError
    from utils.plumbing.checkpoint import CheckpointError
    from utils.plumbing.identity import new_run_id, utc_now
    from utils.plumbing.run import load_resume_state, recorded_line, start_clean, train_to_record, write_record
    from utils.plumbing.signals import Interrupted

    start_clean(args)
    identity = {"run_id": new_run_id(), "started_at": utc_now()}
    resume_state = None
    try:
        if args.resume:
            resume_state, message, complete = load_resume_state(args, dataset_cls.N_TASKS)
            print(message)
            if complete:
                return 0
            identity = (resume_state or {}).get("identity", identity)
        found = None if args.rerun else recorded_line(args)
        if found is not None:
            print(f"{PROG}: this run's key ({found.record.get('key_hash')}) already has a result in {found.path} "
                  f"(line {found.number}, run_id {found.record.get('run_id')}): nothing run, nothing appended; to "
                  f"run it again on purpose add --rerun (a report counts the key once and refuses lines that "
                  f"disagree)")
            return 0
        record = train_to_record(args, model_cls, dataset_cls, signals, identity, resume_state)
    except CheckpointError as error:
        return fail(f"--resume: {error}", 2)
    except DataError as error:
        return fail(f"--dataset {args.dataset}: {error}", 2)
    except HeadError as error:
        return fail(f"argument --head: {args.head} {error}", 2)
    except NumericsError as error:
        return fail(str(error), 3)
    except Interrupted as stop:
        return report_interruption(stop, args, argv)
    try:
        written, error, repair = write_record(args, record, identity)
    except OSError as error:  # the results file and the checkpoint folder both refused: print the record
        print(json.dumps(record), file=sys.stderr)
        return fail(f"could not write the run's result anywhere ({error.strerror or error}); its results line "
                    f"is printed above: add it to <results folder>/results.jsonl by hand", 1)
    if repair:
        print(f"warning: {repair}", file=sys.stderr)
    value = "" if args.mask_value is None else f"m={args.mask_value}, "
    stream = "" if args.stream == "tasks" and args.passes == 1 else f"stream {args.stream}, passes {args.passes} | "
    print(f"\n{args.model} | {args.dataset} | {stream}mask {args.mask} ({value}scope {args.mask_scope}) | "
          f"buffer {args.buffer_size} | seed {args.seed} | train {record['train_time_s']:.1f} s")
    print(format_table(record))
    if error is not None:
        return fail(f"could not append to {os.path.join(args.results_path, 'results.jsonl')} ({error}); the run's "
                    f"result was saved to {written}: add it with `cat {written} >> <results folder>/results.jsonl`", 1)
    print(f"results line appended to {written} (key_hash {record['key_hash']}, run_id {record['run_id']})")
    return 0


def format_table(record):
    """Class-IL and Task-IL figures of one run, side by side."""
    def cell(value):
        return "n/a" if value is None else f"{value:.2f}"
    rows = [[name] + [cell(record[setting][name]) for setting in ("class_il", "task_il")] for name in SUMMARY_METRICS]
    rows.append(["recency_bias", cell(record["recency_bias"][-1]), "—"])
    rows.append(["online_acc", cell(record["online_accuracy"]["mean"]), "—"])
    if record["eval_curve"]:  # --eval_every
        rows += [[name, cell(value), "—"] for name, value in (
            ("anytime_acc", record["anytime_accuracy"]), ("a_auc", record["a_auc"]),
            ("min_acc", record["min_acc"]["mean"]), ("wc_acc", record["wc_acc"]),
            ("stability_gap", record["stability_gap"]["mean"]),
            ("gap_recovered", record["stability_gap"]["recovered_share"]))]
    table = tabulate(rows, headers=["metric (%)", "Class-IL", "Task-IL"], tablefmt="github")
    if record["class_il"]["fwt"] is None and not record["args"].get("eval_future"):
        table += "\nfwt: n/a, needs --eval_future (evaluation of future tasks and of the untrained network)"
    return table


def report_interruption(stop, args, argv):
    if stop.path is None:
        print(f"{PROG}: interrupted before the first training step: nothing was trained"
              f"{' (the checkpoints are unchanged)' if args.resume else ', nothing written'}", file=sys.stderr)
        return stop.status
    directory = os.path.dirname(stop.path)
    command = [a for a in argv if a != "--resume"]
    if "--checkpoint_dir" not in command:
        command += ["--checkpoint_dir", directory]
    print(f"{PROG}: interrupted; checkpoint written to {stop.path}; resume with: "
          f"{command_line(command + ['--resume'])}", file=sys.stderr)
    return stop.status


if __name__ == "__main__":
    from utils.plumbing.console import run_command

    sys.exit(run_command(main, PROG))
