#!/usr/bin/env bash
# Retrain chapter 05's diffusion checkpoint on a lent GPU machine (maintainers only).
#
# The GPU machine has PyTorch, numpy, matplotlib, scipy and tqdm but not jupytext, which
# tools.chapter_code needs to read the chapter's source; its wheels travel in the git-ignored .whl/.
#
#   here, once per session:   bash tools/ddpm_on_device.sh fetch-wheels
#   there (the device tool's command, carry [".whl", "data/cache"], timeout_s 600):
#       bash tools/ddpm_on_device.sh train --base-channels 48 --half-weights
#
# "train" passes its arguments to `python -m tools.train_ddpm --device cuda` and copies the two
# checkpoint files, utils/checksums.json and data/README.md into $OUT; copy them back into place
# here, then run `.venv/bin/python -m tools.train_ddpm --evaluate-only` (CPU figures, about an hour
# on 2 cores for a base-48 network) or keep the GPU ones, and `make test`.
set -euo pipefail

WHEELS=(jupytext==1.19.6 nbformat==5.11.1 fastjsonschema==2.22.3 jsonschema==4.26.0
        jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1 jupyter_core==5.9.1
        traitlets==5.16.1 platformdirs==4.14.9 mdit-py-plugins==0.7.0 markdown-it-py==4.3.0)

case "${1:-}" in
  fetch-wheels)
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      -d .whl "${WHEELS[@]}"
    ls .whl
    ;;
  train)
    shift
    : "${OUT:?train runs on the device machine, where \$OUT is set}"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    # The whole log, progress bars too, comes back as train.log; the reply shows it without the bars.
    python3 -m tools.train_ddpm --device cuda "$@" 2>&1 | tee "$OUT/train.log" | grep -v -E '(обучение|DDPM|DDIM):'
    cp data/checkpoints/ddpm_mnist.pt data/checkpoints/ddpm_mnist.pt2 utils/checksums.json data/README.md "$OUT"/
    ;;
  *)
    echo "usage: $0 fetch-wheels | train [tools.train_ddpm options]" >&2
    exit 2
    ;;
esac
