#!/usr/bin/env bash
# The GPU bench, in one script (issue 5). On the GPU machine, from the repo root, with .device/
# carried (bench/gpu/pack-slim.sh builds it):
#     source .device/setup.sh && bash bench/gpu/run.sh
# CONFIGS (time configurations per model, default all) and STAGES (default "captrace parity growth
# hostcap half kivi gpuprof smoke") narrow a run. Writes everything under $OUT (default bench/results/tmp/gpu): torch.json, raw/<model>.<config>.json,
# fixtures/gpu-parity.json and fixtures/gpu-capture-trace.json (commit both under test/fixtures/), growth.json, host-smoke.json,
# gpu-bench.json (all results with ratioVsTorch), table.md, logs.tar.gz (logs/ and raw/). Each configuration runs in its own
# process under a timeout, so one failure (or a Dawn segfault) costs only that row; the whole run
# keeps within RUN_BUDGET_S (default 540 s: the device tool allows 600 s a command) and always
# prints the table last.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/bench/results/tmp/gpu}
WORK=${WORK:-/tmp/stepkv-gpu-work}
MODELS=${MODELS:-synth-12x768,robot-carried,gui-carried}
BUDGET=${RUN_BUDGET_S:-540}
START=$(date +%s)
mkdir -p "$OUT/raw" "$OUT/logs" "$OUT/fixtures" "$WORK"
log() { echo "[$(($(date +%s) - START)) s] $*" | tee -a "$OUT/logs/run.log"; }
left() { echo $((BUDGET - ($(date +%s) - START))); }
# run NAME CAP CMD...: runs CMD with a timeout of min(CAP, budget left − 25 s), logs to logs/NAME.log
run() {
  local name=$1 cap=$2; shift 2
  local t; t=$(left); t=$((t - 25)); [ "$t" -gt "$cap" ] && t=$cap
  if [ "$t" -lt 10 ]; then log "SKIPPED $name (time budget)"; return 124; fi
  log "$name (timeout ${t}s)"
  timeout --kill-after=5 "$t" "$@" > "$OUT/logs/$name.log" 2>&1
  local rc=$?
  [ $rc -eq 0 ] || log "  $name failed (exit $rc; logs/$name.log)"
  return $rc
}
if [ ! -f gpu/dist/bench.mjs ] && [ -f .device/dist.tar.xz ]; then tar -xJf .device/dist.tar.xz; fi
BENCH=gpu/dist/bench.mjs
# an ICD that bench/gpu/diag.sh found to give an adapter
[ -f /tmp/stepkv-vk-icd ] && export VK_DRIVER_FILES=$(cat /tmp/stepkv-vk-icd)
{ nvidia-smi; echo "node $(node --version)"; python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'; } > "$OUT/logs/env.txt" 2>&1
# the device tool brings back only a few files: logs/ and raw/ travel as one archive
trap 'node "$BENCH" report --dir "$OUT" > "$OUT/table.md" 2> "$OUT/logs/report.log"; cat "$OUT/table.md"; tar -czf "$OUT/logs.tar.gz" -C "$OUT" logs raw && rm -rf "$OUT/logs" "$OUT/raw"' EXIT

run prepare 240 python3 bench/gpu/torch_bench.py prepare --work "$WORK" --models "$MODELS"
run torch 120 python3 bench/gpu/torch_bench.py time --work "$WORK" --out "$OUT/torch.json" --models "$MODELS"
for model in ${MODELS//,/ }; do
  [ -f "$WORK/inputs/$model.json" ] || { log "no inputs for $model (prepare failed?)"; continue; }
  configs="webgpu-host-captured webgpu-captured webgpu-static webgpu-host-resident webgpu-resident webgpu-roundtrip wasm"
  [ "$model" = synth-12x768 ] || configs="$configs wasm-static"  # checks the fixed-capacity export itself
  configs=${CONFIGS:-$configs}
  for config in $configs; do
    iters=20; cap=150
    if [ "$config" = wasm ] && [ "$model" = synth-12x768 ]; then iters=3; fi
    raw="$OUT/raw/$model.$config.json"
    run "time-$model-$config" $cap node "$BENCH" time --model "$model" --config "$config" --work "$WORK" --out "$raw" --iters $iters
    rc=$?
    [ -f "$raw" ] || echo "{\"model\":\"$model\",\"config\":\"$config\",\"ok\":false,\"error\":\"exit $rc (crash, timeout or skipped; logs/time-$model-$config.log)\"}" > "$raw"
  done
done
STAGES=${STAGES:-captrace parity growth hostcap half kivi gpuprof smoke}
has() { [[ " $STAGES " == *" $1 "* ]]; }
# captured hosts against wasm step by step, alone and beside a dynamic-shape host (a captured graph
# once broke its neighbour's results: run it with every change to the captured path)
has captrace && run captrace 100 node "$BENCH" captrace --out "$OUT/fixtures/gpu-capture-trace.json"
has parity && run parity 150 node "$BENCH" parity --out "$OUT/fixtures/gpu-parity.json"
has growth && run growth 240 node "$BENCH" growth --out "$OUT/growth.json"
# the host's layouts: round trip, resident, --fixed-capacity, --capture (inside logs.tar.gz: the tool returns few files)
has hostcap && run hostcap 180 node "$BENCH" hostcap --out "$OUT/logs/hostcap.json"
# float16 sessions on the device: rounding vs the codec (value for value), sessions vs wasm, step time
has half && run half 150 node "$BENCH" half --out "$OUT/half.json"
# KIVI sessions on the device with a host mirror: vs a wasm round trip, device rows vs the mirror, step time
has kivi && run kivi 150 node "$BENCH" kivi --out "$OUT/kivi.json"
# GPU kernel time per step (ORT's timestamp queries) of the synthetic model's host step and bare
# replay: whether the host's extra time is kernel work or waiting (inside logs.tar.gz, not a table row)
if has gpuprof && [ -f "$WORK/inputs/synth-12x768.json" ]; then
  for config in webgpu-host-captured webgpu-captured; do
    run "gpuprof-$config" 60 node "$BENCH" time --model synth-12x768 --config $config --work "$WORK" --out "$OUT/logs/gpuprof-synth-12x768.$config.json" --iters 20 --gpu-profile
  done
  # the host step without its pre-replay flush and/or its input writes (timing experiments)
  for variant in noflush nowrites noflush-nowrites; do
    run "variant-$variant" 60 node "$BENCH" time --model synth-12x768 --config webgpu-host-captured --work "$WORK" --out "$OUT/logs/variant-synth-12x768.$variant.json" --iters 20 --capture-variant $variant
  done
fi
# The bundled host on WebGPU over HTTP: health, a session, three steps, close.
has smoke && run host-smoke 60 node -e '
const { spawn } = require("node:child_process")
const port = 18000 + Math.floor(Math.random() * 1000)
const host = spawn(process.execPath, ["gpu/dist/host.mjs", "--port", String(port), "--durable-dir", process.env.WORK + "/host"], { stdio: "inherit" })
const url = `http://127.0.0.1:${port}`
const out = { ok: false }
const done = (code) => { host.kill("SIGKILL"); require("node:fs").writeFileSync(process.env.OUT + "/host-smoke.json", JSON.stringify(out, null, 2)); process.exit(code) }
;(async () => {
  for (let i = 0; i < 100; i++) { try { out.health = await (await fetch(url + "/healthz")).json(); break } catch { await new Promise((r) => setTimeout(r, 300)) } }
  const call = async (method, path, body) => (await fetch(url + path, { method, headers: { "content-type": "application/json" }, body: body && JSON.stringify(body) })).json()
  out.created = await call("POST", "/v1/sessions", { id: "smoke", model: "tiny-gqa", policy: { name: "window", params: { sinkTokens: 4, recentTokens: 32 } } })
  out.steps = []
  for (let seq = 1; seq <= 3; seq++) out.steps.push(await call("POST", "/v1/sessions/smoke/steps", { seq, observation: { text: "smoke step " + seq + " on the GPU host" } }))
  out.ok = out.steps.every((s) => s.seq > 0 && s.durableSeq === s.seq)
  done(out.ok ? 0 : 1)
})().catch((e) => { out.error = String(e); done(1) })'
log "done"
