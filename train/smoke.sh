#!/usr/bin/env bash
# Local end-to-end smoke test of the pipeline with tiny sizes on CPU (a few minutes on 2 cores):
# bundle → generate → train (2 steps, D = 32) → export → onnxruntime check → closed-loop eval (2
# episodes per task) → ORT-web parity test.
# Writes only under $SMOKE (default /tmp/stepkv-smoke); the repo's models/ are not touched.
#   PYTHON=/usr/bin/python3 bash train/smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."
S=${SMOKE:-/tmp/stepkv-smoke}
rm -rf "$S" && mkdir -p "$S"
bash train/bundle.sh
OUT=$S/out WORK=$S/work MODELS=$S/models FIXTURES=$S/fixtures GUI_EPISODES=${GUI_EPISODES:-60} \
  ROBOT_EPISODES=${ROBOT_EPISODES:-60} EVAL_EPISODES=2 WORKERS=2 DEVICE=cpu PYTHON=${PYTHON:-python3} TRAIN_S=120 \
  TRAIN_ARGS=${TRAIN_ARGS:-"--max-steps 2 --hidden 32 --eval-episodes 4 --batch 4"} bash train/run_all.sh
STEPKV_MODELS_DIR=$S/models STEPKV_FIXTURES_DIR=$S/fixtures npx vitest run --project unit test/train
