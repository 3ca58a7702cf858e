"""The local backend: a pool of reused worker processes (torch imported once each); on a machine with
GPUs, workers are pinned round-robin to the GPUs, --runs_per_gpu of them per GPU."""
import multiprocessing
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from utils.plumbing.console import command_line
from utils.study.worker import init_worker, run_one

TRACKER_WARNING = "ignore::UserWarning:multiprocessing.resource_tracker"


def default_workers(threads, gpus, runs_per_gpu):
    if gpus:
        return gpus * runs_per_gpu
    return max(1, (os.cpu_count() or 1) // threads)


def quiet_tracker():
    """Workers ended by Ctrl-C leave their queue semaphores to multiprocessing's resource tracker, which
    frees them and warns that it did; the tracker takes its warning filters from sys.warnoptions."""
    if TRACKER_WARNING not in sys.warnoptions:
        sys.warnoptions.append(TRACKER_WARNING)


def run_local(runs, sweep_name, workers, threads, gpus, on_result):
    """Run every argv of `runs`, calling on_result(argv, outcome) in the driver as each finishes."""
    quiet_tracker()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker, initargs=(threads,)) as pool:
        pending = {}
        for index, argv in enumerate(runs):
            device = f"cuda:{index % gpus}" if gpus else None
            pending[pool.submit(run_one, argv, sweep_name, device)] = argv
        try:
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)  # wakes for Ctrl-C
                for future in done:
                    argv = pending.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool as error:
                        outcome = {"error": f"the worker process died ({error})", "command": command_line(argv)}
                    on_result(argv, outcome)
        except BaseException:
            for process in list(pool._processes.values()):  # runs in progress end now; finished ones are on disk
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
