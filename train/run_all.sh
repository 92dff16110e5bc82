#!/usr/bin/env bash
# The whole training pipeline for the GPU machine, in one command (from the repo root):
#   source .device/setup.sh && bash train/run_all.sh          (with $OUT set)
# 1. data: train/dist/gen.mjs (committed bundle of train/gen.ts) runs the GUI and robot experts
#    in parallel Node processes; 2. trains gui-carried, gui-tempo, robot-carried, robot-tempo
#    concurrently on the one GPU, each for TRAIN_S seconds; 3. exports models/<id>/ and
#    test/fixtures/<id>.json (+ train-reference.json); 4. checks the ONNX files with onnxruntime;
#    5. packs everything into $OUT/stepkv-gui.tar.gz and $OUT/stepkv-robot.tar.gz (extract at
#    the repo root) and writes $OUT/summary.txt; before packing, 5. train/dist/eval.mjs measures
#    closed-loop success per task with memory and memoryless (ORT-web from .device's node_modules).
# Knobs (environment): GUI_EPISODES ROBOT_EPISODES TRAIN_S WORKERS PYTHON DEVICE WORK TRAIN_ARGS EVAL_EPISODES
# GUI_GEN_ARGS / ROBOT_GEN_ARGS (extra gen.ts flags, e.g. "--task-weight click-button=6")
# INIT_TEMPO_FROM=carried (with INIT_DIR: the *-tempo models start from <domain>-carried.pt's weights)
# ONLY="gui-carried gui-tempo" (train a subset) REUSE_DATA=1 (keep $WORK/data from an earlier call) INIT=1|gui|robot (continue from $WORK/ckpt/<id>.pt: a device
# call is limited to 10 minutes, so longer training is several calls on a warm machine)
# MODELS FIXTURES (default models, test/fixtures; train/smoke.sh points them at a scratch folder)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder the results go to}"
GUI_EPISODES=${GUI_EPISODES:-16000}
ROBOT_EPISODES=${ROBOT_EPISODES:-16000}
TRAIN_S=${TRAIN_S:-240}
WORKERS=${WORKERS:-12}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
WORK=${WORK:-/tmp/stepkv-train}
EVAL_EPISODES=${EVAL_EPISODES:-30}
TRAIN_ARGS=${TRAIN_ARGS:-}
MODELS=${MODELS:-models}
FIXTURES=${FIXTURES:-test/fixtures}
read -r -a IDS <<< "${ONLY:-gui-carried gui-tempo robot-carried robot-tempo}"  # ONLY: a subset
t0=$SECONDS
stamp() { echo "[run_all +$((SECONDS - t0))s] $*"; }
mkdir -p "$OUT" "$WORK/logs" "$WORK/ckpt"
[ -f train/dist/gen.mjs ] || { echo "train/dist/gen.mjs is missing: run bash train/bundle.sh" >&2; exit 1; }
stamp "node $(node --version), $($PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())')"

# 1. data (GUI and robot at once, WORKERS Node processes in all)
if [ "${REUSE_DATA:-0}" = 1 ] && [ -f "$WORK/data/gui/index.json" ] && [ -f "$WORK/data/robot/index.json" ]; then
  stamp "reusing $WORK/data"
else
  rm -rf "$WORK/data"
  half=$(( WORKERS / 2 > 0 ? WORKERS / 2 : 1 ))
  node train/dist/gen.mjs --domain gui --episodes "$GUI_EPISODES" --workers "$half" --out "$WORK/data/gui" ${GUI_GEN_ARGS:-} > "$WORK/logs/gen-gui.txt" 2>&1 & g=$!
  node train/dist/gen.mjs --domain robot --episodes "$ROBOT_EPISODES" --workers "$half" --out "$WORK/data/robot" ${ROBOT_GEN_ARGS:-} > "$WORK/logs/gen-robot.txt" 2>&1 & r=$!
  wait $g || { cat "$WORK/logs/gen-gui.txt"; exit 1; }
  wait $r || { cat "$WORK/logs/gen-robot.txt"; exit 1; }
  stamp "$(tail -n 1 "$WORK/logs/gen-gui.txt")"
  stamp "$(tail -n 1 "$WORK/logs/gen-robot.txt")"
fi
# the batched TempoFit unroll equals the frame-by-frame one (CPU, small model; beside the training)
$PY train/check_tempo_batched.py --data "$WORK/data/robot" > "$WORK/logs/check-tempo-batched.txt" 2>&1 & ctb=$!

# 2. train the four models at once on the one GPU (GPU utilisation sampled into logs/nvidia-smi.txt)
(while sleep 20; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader; done) > "$WORK/logs/nvidia-smi.txt" 2>&1 & smi=$!
declare -A pid
for id in "${IDS[@]}"; do
  domain=${id%%-*}; regime=${id#*-}
  init=()
  # INIT=1: all models continue; INIT=robot (or gui): only that domain's models do
  if [ "${INIT_TEMPO_FROM:-}" = carried ] && [ "$regime" = tempo ] && [ -n "${INIT_DIR:-}" ] && [ -f "$INIT_DIR/$domain-carried.pt" ]; then
    # warm start: the carried model's weights (same parameters: TempoFit adds no weights), which
    # already read the screens; the bank's retrieval is then what the tempo run has to learn
    init=(--init "$INIT_DIR/$domain-carried.pt")
  elif [ -n "${INIT_DIR:-}" ] && [ -f "$INIT_DIR/$id.pt" ]; then  # checkpoints carried from an earlier run's stepkv-ckpt.tar.gz
    init=(--init "$INIT_DIR/$id.pt")
  elif { [ "${INIT:-0}" = 1 ] || [ "${INIT:-0}" = "$domain" ]; } && [ -f "$WORK/ckpt/$id.pt" ]; then
    cp "$WORK/ckpt/$id.pt" "$WORK/ckpt/$id.init.pt"; init=(--init "$WORK/ckpt/$id.init.pt")
    [ -f "$WORK/logs/$id.txt" ] && cat "$WORK/logs/$id.txt" >> "$WORK/logs/$id.earlier.txt"
  fi
  OMP_NUM_THREADS=3 $PY train/train.py --data "$WORK/data/$domain" --regime "$regime" --id "$id" \
    --ckpt "$WORK/ckpt/$id.pt" --log "$WORK/logs/$id.txt" --time-budget-s "$TRAIN_S" --device "$DEVICE" \
    ${init[@]+"${init[@]}"} $TRAIN_ARGS > "$WORK/logs/$id.stdout" 2>&1 &
  pid[$id]=$!
done
# a model that fails to train or export is reported and left out; the others go on
failed=()
ok=()
for id in "${IDS[@]}"; do
  if wait "${pid[$id]}"; then stamp "$(grep '^summary' "$WORK/logs/$id.txt")"; ok+=("$id")
  else stamp "TRAINING FAILED: $id"; tail -n 30 "$WORK/logs/$id.stdout"; failed+=("$id"); fi
done
IDS=("${ok[@]}")
kill $smi 2>/dev/null || true
[ ${#IDS[@]} -gt 0 ] || { tar -czf "$OUT/stepkv-logs.tar.gz" -C "$WORK" logs; exit 1; }
wait $ctb || stamp "check_tempo_batched FAILED"
stamp "$(tail -n 1 "$WORK/logs/check-tempo-batched.txt")"

# 3. export (ONNX + manifest + fixture) and the semantics fixture
for id in "${IDS[@]}"; do
  $PY train/export.py --ckpt "$WORK/ckpt/$id.pt" --out "$MODELS/$id" --fixture "$FIXTURES/$id.json" \
    --log "$WORK/logs/$id.txt" > "$WORK/logs/export-$id.txt" 2>&1 &
  pid[$id]=$!
done
ok=()
for id in "${IDS[@]}"; do
  if wait "${pid[$id]}"; then stamp "$(grep '^export' "$WORK/logs/export-$id.txt")"; ok+=("$id")
  else stamp "EXPORT FAILED: $id"; tail -n 30 "$WORK/logs/export-$id.txt"; failed+=("$id"); fi
done
IDS=("${ok[@]}")
[ ${#IDS[@]} -gt 0 ] || { tar -czf "$OUT/stepkv-logs.tar.gz" -C "$WORK" logs; exit 1; }
$PY train/reference_fixture.py --out "$FIXTURES/train-reference.json"

# 4. onnxruntime (Python) agreement with torch
$PY train/check_onnx.py --models "$MODELS" --fixtures "$FIXTURES" "${IDS[@]}" | tee "$WORK/logs/check-onnx.txt" || stamp "check_onnx reported a failure (see above)"

# 5. closed-loop success in the simulators (ORT-web, Node), with memory and memoryless, in parallel
if [ -f train/dist/eval.mjs ] && [ -d node_modules/onnxruntime-web ]; then
  for id in "${IDS[@]}"; do
    for mode in memory memoryless; do
      node train/dist/eval.mjs --model "$MODELS/$id" --episodes "$EVAL_EPISODES" --mode "$mode" \
        --out "$WORK/logs/eval-$id-$mode.json" > "$WORK/logs/eval-$id-$mode.txt" 2>&1 &
    done
  done
  wait || true
  cat "$WORK"/logs/eval-*.txt | grep '^eval' | sort | tee "$WORK/logs/eval.txt" || stamp "eval printed nothing (see logs)"
else
  stamp "eval skipped (train/dist/eval.mjs or node_modules/onnxruntime-web missing)"; : > "$WORK/logs/eval.txt"
fi

# 6. pack (paths relative to the repo root)
for domain in gui robot; do
  files=()
  for id in "${IDS[@]}"; do
    if [ "${id%%-*}" = "$domain" ]; then files+=("$MODELS/$id" "$FIXTURES/$id.json"); fi
  done
  if [ ${#files[@]} -gt 0 ]; then
    tar -czf "$OUT/stepkv-$domain.tar.gz" "${files[@]}" "$FIXTURES/train-reference.json"
  fi
done
tar -czf "$OUT/stepkv-logs.tar.gz" -C "$WORK" logs
# the checkpoints (weights, float32), to continue training in a later call: INIT_DIR=<extracted ckpt/>
tar -czf "$OUT/stepkv-ckpt.tar.gz" -C "$WORK" $(cd "$WORK" && ls ckpt/*.pt | grep -v '\.init\.pt$')
{
  echo "stepkv training run, $(date -u +%FT%TZ), commit $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  for id in "${IDS[@]}"; do
    echo "$id: encoder.onnx $(wc -c < "$MODELS/$id/encoder.onnx") B, model.onnx $(wc -c < "$MODELS/$id/model.onnx") B"
    grep '^summary' "$WORK/logs/$id.txt"
    grep '^epoch' "$WORK/logs/$id.txt" | tail -n 1
  done
  cat "$WORK/logs/check-tempo-batched.txt" "$WORK/logs/check-onnx.txt" "$WORK/logs/eval.txt"
} > "$OUT/summary.txt"
ls -l "$OUT"
if [ ${#failed[@]} -gt 0 ]; then stamp "FAILED: ${failed[*]} (see stepkv-logs.tar.gz)"; exit 1; fi
stamp "done: extract with  tar -xzf stepkv-gui.tar.gz && tar -xzf stepkv-robot.tar.gz  at the repo root"
