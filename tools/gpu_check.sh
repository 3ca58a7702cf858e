#!/usr/bin/env bash
# tools/gpu_check.sh: the suite's CUDA path run once, end to end, on a machine with a GPU and no internet.
# First, where pip works: tools/gpu_prepare.sh (wheels, the CIFAR-10 slice and a Mammoth export, all in
# git-ignored folders that travel with the tree). Then, in the repository root on the GPU machine:
#   OUT=some/folder tools/gpu_check.sh [STEP ...]   (steps: env tests bench sweep mammoth; default: all)
# On an H200 the steps took 7, 99, about 250, 74 and 75 s: over one 10-minute call of a lent machine, so
# there run `env tests bench` and `sweep mammoth` as two calls (BENCH_MODELS="xder" benches one model).
# Each step writes its log to $OUT/STEP.log and one line to $OUT/summary.txt (status and seconds); a step
# that fails or passes its time limit does not stop the next. Correctness first (the CUDA tests, in
# parallel), then the timed steps one at a time, so that no timing shares the GPU or the cores.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-out}
SLICE=${SLICE:-.carry/cifar10-mini}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
STEPS=${*:-env tests bench sweep mammoth}

step() {  # NAME LIMIT_S COMMAND...: run COMMAND with a time limit, log to $OUT/NAME.log, note the outcome
  local name=$1 limit=$2 start status
  shift 2
  start=$(date +%s)
  echo "== $name ($(date -u +%H:%M:%S), limit ${limit}s)"
  timeout -k 10 "$limit" bash -c "$*" >>"$OUT/$name.log" 2>&1
  status=$?
  echo "$name: exit $status after $(($(date +%s) - start)) s" | tee -a "$OUT/summary.txt"
  tail -n 25 "$OUT/$name.log"
}

install_wheels() {  # FOLDER TARGET: the carried wheels into their own folder, put first on PYTHONPATH
  [ -d "$1" ] || return 0
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$2" "$1"/*.whl
}

env_report() {
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  "$PY" - <<'PY'
import platform, torch, kornia
print("python", platform.python_version(), "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| cuDNN", torch.backends.cudnn.version(), "| kornia", kornia.__version__)
print("device:", torch.cuda.get_device_name(), "| capability", torch.cuda.get_device_capability(),
      "| CPU cores", __import__("os").cpu_count())
PY
}

cuda_tests() {
  local parallel=()
  "$PY" -c "import xdist" 2>/dev/null && parallel=(-n 6)
  "$PY" -m pytest tests/test_cuda.py -q -rs "${parallel[@]}" -p no:cacheprovider --durations=10
}

bench() {  # each model's eager levers at width 64 (one table each, so a time limit keeps what finished), then
  # compile on DER++ (its warm-up untimed, its build in a fresh process)
  local model
  for model in ${BENCH_MODELS:-er derpp xder}; do
    "$PY" -m utils.bench --device cuda --models "$model" --widths 64 --precisions fp32 cl bf16 bf16+cl \
      --steps 20 --warmup 3 || return
  done
  "$PY" -m utils.bench --device cuda --models derpp --widths 64 --precisions compile compile+bf16 --steps 20 --warmup 3
}

sweep() {  # the same 8 CIFAR-10-slice runs at 2 and at 4 runs per GPU; runs per hour = runs / wall time
  local per_gpu
  for per_gpu in 2 4; do
    rm -rf "$OUT/sweep-results"
    "$PY" -m utils.sweep --grid model=der,derpp seed=0-3 --runs_per_gpu "$per_gpu" \
      --results_path "$OUT/sweep-results" -- --dataset seq-cifar10 --data_path "$SLICE" --nf 20 \
      --buffer_size 200 --n_epochs 1 || return
  done
  rm -rf "$OUT/sweep-results"
}

mammoth_hooks() {  # a sitecustomize (outside both repositories) for Mammoth's process: torchvision reads the
  # slice, whose files differ from the official checksums; each training epoch is timed (device synchronised)
  mkdir -p /tmp/mammoth-sitecustom
  cat >/tmp/mammoth-sitecustom/sitecustomize.py <<'PY'
import atexit, importlib.abc, sys, time


def readable_slice(module):
    module.CIFAR10._check_integrity = lambda self: True


def timed_epochs(module):
    import torch
    run, total = module.train_single_epoch, [0.0]

    def timed(*args, **kwargs):
        start = time.perf_counter()
        out = run(*args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        total[0] += time.perf_counter() - start
        return out
    module.train_single_epoch = timed
    atexit.register(lambda: print(f"mammoth training time (train_single_epoch, all tasks): {total[0]:.2f} s",
                                  file=sys.stderr))


HOOKS = {"torchvision.datasets.cifar": readable_slice, "utils.training": timed_epochs}


class AfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in HOOKS:
            return None
        for finder in sys.meta_path:
            spec = None if finder is self else finder.find_spec(name, path, target)
            if spec is not None:
                load = spec.loader.exec_module
                spec.loader.exec_module = lambda module: (load(module), HOOKS[name](module))
                return spec
        return None


sys.meta_path.insert(0, AfterImport())
PY
}

side_by_side() {  # ER and DER++ on the slice, width 64, 1 epoch, buffer 200, batch = minibatch = 32: suite, Mammoth
  local base=/tmp/mammoth-data model hp
  mkdir -p "$base/CIFAR10"
  ln -sfn "$(realpath "$SLICE")/cifar-10-batches-py" "$base/CIFAR10/cifar-10-batches-py"
  mammoth_hooks
  for model in er derpp; do
    hp=(--lr 0.1)
    [ "$model" = derpp ] && hp=(--lr 0.03 --alpha 0.1 --beta 0.5)
    /usr/bin/time -f "suite $model: whole process %e s" "$PY" main.py --model "$model" --dataset seq-cifar10 \
      --data_path "$SLICE" --nf 64 --buffer_size 200 --n_epochs 1 --batch_size 32 --minibatch_size 32 --seed 0 \
      --device cuda --quiet --results_path "$OUT/side-results" "${hp[@]}" || return
    (cd .carry/mammoth && WANDB_MODE=disabled HF_HUB_OFFLINE=1 \
      PYTHONPATH="/tmp/mammoth-site:/tmp/mammoth-sitecustom:${PYTHONPATH:-}" \
      /usr/bin/time -f "mammoth $model: whole process %e s" "$PY" main.py --model "$model" \
      --dataset seq-cifar10 --buffer_size 200 --n_epochs 1 --batch_size 32 --minibatch_size 32 --seed 0 \
      --num_workers 0 --base_path "$base/" --non_verbose 1 "${hp[@]}") || return
  done
  "$PY" -c "
import json
for line in open('$OUT/side-results/results.jsonl'):
    r = json.loads(line)
    print(f\"suite {r['model']}: train_time_s {r['train_time_s']:.2f}, final Class-IL {r['class_il']['final_avg']:.2f}, \"
          f\"Task-IL {r['task_il']['final_avg']:.2f}\")"
}

export OUT SLICE PY BENCH_MODELS
export -f env_report cuda_tests bench sweep mammoth_hooks side_by_side
install_wheels .whl/suite /tmp/site && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
install_wheels .whl/mammoth /tmp/mammoth-site
for name in $STEPS; do
  case $name in
    env) step env 30 env_report ;;
    tests) step tests 170 cuda_tests ;;
    bench) step bench 270 bench ;;
    sweep) step sweep 80 sweep ;;
    mammoth) step mammoth 120 side_by_side ;;
    *) echo "unknown step $name (steps: env tests bench sweep mammoth)"; exit 2 ;;
  esac
done
cat "$OUT/summary.txt"
