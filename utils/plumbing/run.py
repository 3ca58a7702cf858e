"""One run, from a clean start to its results line on disk: the state every run starts from, the
resume state of a checkpoint, training to the record, and writing the record. main.py and a sweep's
worker call these; neither holds a run's logic of its own."""
import os
import random
import time


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
    """The state every run starts from, in a fresh process or a reused sweep worker: threads,
    deterministic mode, and the python, numpy and torch seeds."""
    import numpy as np
    import torch

    from utils.speed.device import set_threads

    set_threads(args.threads)
    set_determinism(args.deterministic)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)


def train_to_record(args, model_cls, dataset_cls, signals, identity, resume_state=None, log=print):
    """Load the data, train (or continue) and return the run's results line; raises DataError,
    NumericsError or Interrupted."""
    from utils.core.training import Trainer
    from utils.plumbing.environment import environment
    from utils.plumbing.identity import run_key_hash
    from utils.plumbing.record import build_record
    from utils.plumbing.signals import Interrupted, StopSignals
    from utils.reference.configs import config_source

    start = time.perf_counter()
    dataset = dataset_cls(args)
    dataset.prepare(args.device)
    if signals.received is not None:
        raise Interrupted(StopSignals.STATUS[signals.received], None)
    args, levers = choose_run_levers(args, model_cls, dataset, resume_state, log)
    model = model_cls(dataset.get_backbone(), args, dataset, args.device)
    outcome = Trainer(model, dataset, args, signals, identity, log=log).run(resume_state)
    return build_record(args, outcome, time.perf_counter() - start, identity, environment(args.device),
                        run_key_hash(args), dataset.provenance(), levers, config_source(args, model_cls.CONFIG_NAME))


def choose_run_levers(args, model_cls, dataset, resume_state, log):
    """(the flags the run trains with, the record of the levers): under --levers auto a copy of args with the
    levers measured (and said in one line), or a checkpoint's own choice when resuming; args and None under
    --levers fixed."""
    from utils.speed import SPEED_FLAGS
    from utils.speed.levers import choose_levers, lever_name, usable_here

    if args.levers == "fixed":
        return args, None
    if resume_state is not None:
        chosen, dropped = usable_here(args.replaced(**{name: resume_state["args"][name] for name in SPEED_FLAGS}))
        return args.replaced(**chosen), {"choice": lever_name(chosen), "from_checkpoint": True,
                                         **({"dropped": dropped} if dropped else {})}
    chosen, levers = choose_levers(args, model_cls, dataset)
    log(f"levers {args.levers}: {levers['choice']} (median step: "
        + ", ".join(f"{name} {ms:.1f} ms" for name, ms in levers["step_ms"].items()) + ")")
    return args.replaced(**chosen), levers


def load_resume_state(args, n_tasks):
    """(checkpoint state or None, the line to print, whether the run's result is already written)."""
    from utils.core.loop_state import restored
    from utils.plumbing.checkpoint import check_same_run, describe_position, load_latest, read_complete
    from utils.plumbing.record import json_safe

    state, path = load_latest(args.checkpoint_dir)
    if state is None:
        return None, f"no checkpoint in {args.checkpoint_dir} yet: starting from the beginning", False
    check_same_run(state["args"], json_safe(vars(args)))
    done = read_complete(args.checkpoint_dir)
    position = restored(state)[0]
    if position.task >= n_tasks and done is not None:
        return state, (f"the run is complete: its result is in {done['results_file']} (run_id {done['run_id']}); "
                       f"nothing to do, nothing appended"), True
    return state, f"resuming from {path} {describe_position(position, n_tasks, args.n_epochs)}", False


def recorded_line(args):
    """The Line of the results file that already holds this run's key, or None."""
    from utils.plumbing.identity import run_key_hash
    from utils.plumbing.results_file import RESULTS_FILE, find_key

    return find_key(os.path.join(args.results_path, RESULTS_FILE), run_key_hash(args))


def write_record(args, record, identity):
    """Append the record (or keep it in the checkpoint folder if the disk refuses) and mark the run's
    checkpoint complete; returns save_record's (path written, error, tail repair note)."""
    from utils.plumbing.checkpoint import mark_complete
    from utils.plumbing.identity import default_checkpoint_dir
    from utils.plumbing.results_file import save_record

    written, error, repair = save_record(args.results_path, record, args.checkpoint_dir or default_checkpoint_dir(args))
    if args.checkpoint_dir:
        mark_complete(args.checkpoint_dir, written, identity["run_id"])
    return written, error, repair
