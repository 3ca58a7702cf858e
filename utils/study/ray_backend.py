"""The Ray backend: each run is a Ray task with its CPU (and GPU) needs; Ray reuses its worker
processes, and results come back to the driver, which alone writes the results file."""
import os

from utils.study.worker import run_one


def run_ray(runs, sweep_name, address, threads, runs_per_gpu, on_result):
    try:
        import ray
    except ImportError:
        raise SystemExit("python -m utils.sweep: error: --backend ray needs Ray: pip install 'ray[default]'") from None
    local = {} if address else {"num_cpus": os.cpu_count()}
    ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **local)
    gpus_per_run = 1 / runs_per_gpu if ray.cluster_resources().get("GPU") else 0
    remote = ray.remote(num_cpus=threads, num_gpus=gpus_per_run)(run_task)
    pending = {remote.remote(argv, sweep_name, threads): argv for argv in runs}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                argv = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as error:  # a lost node or a dead worker: that run failed
                    outcome = {"error": " ".join(str(error).split())[:300], "command": " ".join(argv)}
                on_result(argv, outcome)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def run_task(argv, sweep_name, threads):
    import torch

    torch.set_num_threads(threads)
    return run_one(argv, sweep_name)
