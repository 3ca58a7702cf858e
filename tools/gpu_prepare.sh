#!/usr/bin/env bash
# tools/gpu_prepare.sh: what tools/gpu_check.sh carries to a GPU machine that has no internet, gathered here
# (where pip and the mirror of aimagelab/mammoth work) into two git-ignored folders:
#   .whl/suite/     wheels of what the suite needs beyond a CUDA PyTorch image (kornia, kornia_rs)
#   .whl/mammoth/   wheels of what Mammoth imports at start-up beyond that image (its pinned timm 0.9.8, and
#                   open_clip_torch 2.32.0, the newest that admits that timm, with ftfy and wcwidth)
#   .carry/cifar10-mini/  the CIFAR-10 slice (from ../shared/data, which does not travel)
#   .carry/mammoth/       an export of Mammoth at the commit of ../shared/reference/running-mammoth.md,
#                         less two dataset modules seq-cifar10 does not need (one downloads CLIP weights when
#                         imported, one imports pandas); never copied into the project
# Usage: tools/gpu_prepare.sh [MAMMOTH_GIT_DIR] (default: the fetched mirror under /work/.mirror)
# The device's Python is 3.12 (x86_64); wheels are fetched for it, not for the Python here.
set -euo pipefail
cd "$(dirname "$0")/.."
MAMMOTH_GIT=${1:-/work/.mirror/aimagelab+mammoth/repo}
MAMMOTH_COMMIT=e75a491
PLATFORMS=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64
           --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
           --platform any)
fetch() {  # folder, then NAME==VERSION ...
  local folder=$1; shift
  mkdir -p "$folder"
  python3 -m pip download -q --no-deps "${PLATFORMS[@]}" -d "$folder" "$@"
}
fetch .whl/suite kornia==0.9.0 kornia_rs==0.2.0
fetch .whl/mammoth timm==0.9.8 open_clip_torch==2.32.0 ftfy==6.3.1 wcwidth==0.9.4 onedrivedownloader==1.1.3
mkdir -p .carry
rm -rf .carry/cifar10-mini .carry/mammoth
cp -r ../shared/data/cifar10-mini .carry/cifar10-mini
chmod -R u+w .carry/cifar10-mini
mkdir -p .carry/mammoth
git -C "$MAMMOTH_GIT" archive "$MAMMOTH_COMMIT" main.py __init__.py backbone datasets models utils \
  | tar -x -C .carry/mammoth
rm .carry/mammoth/datasets/seq_8vision.py .carry/mammoth/datasets/seq_celeba.py  # CLIP download; pandas
du -sh .whl .carry
