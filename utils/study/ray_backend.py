"""The Ray backend: each run is a Ray task with its CPU (and GPU) needs; Ray reuses its worker
processes, and results come back to the driver, which alone writes the results file. A run whose
worker or node is lost is submitted again by the driver (not by Ray), so the sweep can say which runs
were retried, and a run is written only when its one returned result arrives."""
import logging
import os

from utils.plumbing.console import command_line
from utils.study.worker import run_one

ATTEMPTS = 4  # as many as Ray's own default (1 + max_retries 3)


def run_ray(runs, sweep_name, address, threads, runs_per_gpu, on_result, on_retry):
    try:
        import ray
        from ray.exceptions import RayTaskError
    except ImportError:
        raise SystemExit("python -m utils.sweep: error: --backend ray needs Ray: pip install 'ray[default]'") from None
    local = {} if address else {"num_cpus": os.cpu_count()}
    ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             logging_level=logging.ERROR, configure_logging=True, **local)
    gpus_per_run = 1 / runs_per_gpu if ray.cluster_resources().get("GPU") else 0
    remote = ray.remote(num_cpus=threads, num_gpus=gpus_per_run, max_retries=0)(run_task)
    pending = {remote.remote(argv, sweep_name, threads): (argv, 1) for argv in runs}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)  # wakes for Ctrl-C
            for ref in done:
                argv, attempt = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except RayTaskError as error:  # the run itself raised past run_one's own handling
                    outcome = {"error": one_line(error), "command": command_line(argv)}
                except Exception as error:  # a lost worker or node: the run never returned
                    if attempt < ATTEMPTS:
                        on_retry(argv, attempt + 1, f"{type(error).__name__}")
                        pending[remote.remote(argv, sweep_name, threads)] = (argv, attempt + 1)
                        continue
                    outcome = {"error": f"lost {ATTEMPTS} times: {one_line(error)}",
                               "command": command_line(argv)}
                on_result(argv, outcome)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def one_line(error):
    return " ".join(str(error).split())[:300]


def run_task(argv, sweep_name, threads):
    from utils.speed.device import set_threads

    set_threads(threads)
    return run_one(argv, sweep_name)
