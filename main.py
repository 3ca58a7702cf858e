"""Front door: python main.py --model der --mask general --buffer_size 20 [--help]."""
import os
import shlex
import sys
import time
import warnings

from utils.cli import PROG, parse_args


def one_line_warnings(message, category, filename, lineno, line=None):
    return f"warning: {message}\n"


def fail(message, status):
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def set_determinism(enabled):
    """Deterministic kernels everywhere and no cuDNN autotuning when enabled (costs speed on GPU);
    set both ways, so a worker that ran a deterministic run does not carry it into the next."""
    import torch

    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = False


def start_clean(args):
    """The state every run starts from, in a fresh process or a reused sweep worker."""
    import torch

    from utils.training import set_seed

    if args.threads:
        torch.set_num_threads(args.threads)
    set_determinism(args.deterministic)
    set_seed(args.seed)


def train_to_record(args, model_cls, dataset_cls, signals, identity, resume_state=None, log=print):
    """Load the data, train (or continue) and return the run's results line; raises DataError,
    NumericsError or Interrupted."""
    from utils.environment import environment
    from utils.results import build_record
    from utils.run_identity import key_hash, run_key
    from utils.training import Interrupted, StopSignals, Trainer

    start = time.perf_counter()
    dataset = dataset_cls(args)
    dataset.prepare(args.device)
    if signals.received is not None:
        raise Interrupted(StopSignals.STATUS[signals.received], None)
    model = model_cls(dataset.get_backbone(), args, dataset, args.device)
    outcome = Trainer(model, dataset, args, signals, identity, log=log).run(resume_state)
    return build_record(args, outcome, time.perf_counter() - start, identity, environment(args.device),
                        key_hash(run_key(args)))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args, model_cls, dataset_cls = parse_args(argv)
    warnings.formatwarning = one_line_warnings
    from utils.training import StopSignals

    with StopSignals() as signals:
        return run(args, argv, model_cls, dataset_cls, signals)


def load_resume_state(args, n_tasks):
    """(checkpoint state or None, the line to print, whether the run's result is already written)."""
    from utils.checkpoint import check_same_run, describe_position, load_latest, read_complete
    from utils.results import json_safe

    state, path = load_latest(args.checkpoint_dir)
    if state is None:
        return None, f"no checkpoint in {args.checkpoint_dir} yet: starting from the beginning", False
    check_same_run(state["args"], json_safe(vars(args)))
    done = read_complete(args.checkpoint_dir)
    if state["progress"]["task"] >= n_tasks and done is not None:
        return state, (f"the run is complete: its result is in {done['results_file']} (run_id {done['run_id']}); "
                       f"nothing to do, nothing appended"), True
    return state, f"resuming from {path} {describe_position(state['progress'], n_tasks, args.n_epochs)}", False


def run(args, argv, model_cls, dataset_cls, signals):
    from datasets.base import DataError
    from utils.checkpoint import CheckpointError, mark_complete
    from utils.results import format_table, save_record
    from utils.run_identity import default_checkpoint_dir, new_run_id, utc_now
    from utils.training import Interrupted, NumericsError

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
        if not args.rerun and already_recorded(args):
            return 0
        record = train_to_record(args, model_cls, dataset_cls, signals, identity, resume_state)
    except CheckpointError as error:
        return fail(f"--resume: {error}", 2)
    except DataError as error:
        return fail(f"--dataset {args.dataset}: {error}", 2)
    except NumericsError as error:
        return fail(str(error), 3)
    except Interrupted as stop:
        return report_interruption(stop, args, argv)
    written, error, repair = save_record(args.results_path, record, args.checkpoint_dir or default_checkpoint_dir(args))
    if repair:
        print(f"warning: {repair}", file=sys.stderr)
    if args.checkpoint_dir:
        mark_complete(args.checkpoint_dir, written, identity["run_id"])
    value = "" if args.mask_value is None else f"m={args.mask_value}, "
    print(f"\n{args.model} | {args.dataset} | mask {args.mask} ({value}scope {args.mask_scope}) | "
          f"buffer {args.buffer_size} | seed {args.seed} | train {record['train_time_s']:.1f} s")
    print(format_table(record))
    if error is None:
        print(f"results line appended to {written} (key_hash {record['key_hash']}, run_id {record['run_id']})")
    if error is not None:
        return fail(f"could not append to {os.path.join(args.results_path, 'results.jsonl')} ({error}); the run's "
                    f"result was saved to {written}: add it with `cat {written} >> <results folder>/results.jsonl`", 1)
    return 0


def already_recorded(args):
    """Say so, and return True, when the results file already holds a result of this run's key."""
    from utils.results_file import RESULTS_FILE, find_key
    from utils.run_identity import key_hash, run_key

    path = os.path.join(args.results_path, RESULTS_FILE)
    found = find_key(path, key_hash(run_key(args)))
    if found is None:
        return False
    print(f"{PROG}: this run's key ({found.record.get('key_hash')}) already has a result in {path} (line "
          f"{found.number}, run_id {found.record.get('run_id')}): nothing run, nothing appended; to run it again "
          f"on purpose add --rerun (a report counts the key once and refuses lines that disagree)")
    return True


def report_interruption(stop, args, argv):
    if stop.path is None:
        print(f"{PROG}: interrupted before the first training step: nothing was trained"
              f"{' (the checkpoints are unchanged)' if args.resume else ', nothing written'}", file=sys.stderr)
        return stop.status
    directory = os.path.dirname(stop.path)
    command = [a for a in argv if a != "--resume"]
    if "--checkpoint_dir" not in command:
        command += ["--checkpoint_dir", directory]
    print(f"{PROG}: interrupted; checkpoint written to {stop.path}; resume with: python {PROG} "
          f"{shlex.join(command + ['--resume'])}", file=sys.stderr)
    return stop.status


if __name__ == "__main__":
    from utils.console import run_command

    sys.exit(run_command(main, PROG))
