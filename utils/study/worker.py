"""One run of a sweep inside a reused worker process: parsed with main.py's parser, started from a
clean state, trained exactly as `python main.py` would, and returned (never written) to the driver."""
import traceback


def parse_run(argv):
    """((args, model class, dataset class), None) or (None, the one-line error main.py would print)."""
    from utils.plumbing.cli import parse_args
    from utils.plumbing.parser import FlagError

    try:
        return parse_args(argv, raise_errors=True), None
    except FlagError as error:
        return None, str(error)


def key_of(argv):
    """The run's key (every resolved flag but paths) and its hash, as main.py records them."""
    from utils.plumbing.identity import key_hash, run_key

    parsed, error = parse_run(argv)
    if error:
        raise ValueError(error)
    key = run_key(parsed[0])
    return key, key_hash(key)


def pinned(argv, device):
    """argv run on the GPU `device` (cuda:N) a worker is pinned to, unless it names its own --device."""
    return argv + ["--device", device] if device and "--device" not in argv else argv


def run_one(argv, sweep_name, device=None):
    """{"record": results line} or {"error": last error line}; `device` pins a GPU (cuda:N)."""
    from utils.plumbing.console import command_line
    from utils.plumbing.identity import new_run_id, run_key, utc_now
    from utils.plumbing.run import start_clean, train_to_record
    from utils.plumbing.signals import StopSignals

    command = command_line(argv)
    try:
        parsed, error = parse_run(pinned(argv, device))
        if error:
            return {"error": error, "command": command}
        args, model_cls, dataset_cls = parsed
        start_clean(args)
        identity = {"run_id": new_run_id(), "started_at": utc_now()}
        record = train_to_record(args, model_cls, dataset_cls, StopSignals(), identity, log=lambda *_: None)
    except Exception as error:  # a failing run is reported, the sweep goes on
        last = traceback.format_exception_only(type(error), error)[-1].strip()
        return {"error": last, "command": command}
    record.update(sweep=sweep_name, key=run_key(args))
    return {"record": record, "command": command}


def init_worker(threads):
    """Each worker gets its share of the CPU's cores, imported torch once, and leaves Ctrl-C to the
    driver, which ends the workers itself."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from utils.speed.device import set_threads

    set_threads(threads)
