#!/usr/bin/env bash
# Bundles the GPU host and the GPU bench for a machine with Node but no npm:
# gpu/dist/host.mjs (gpu/host.ts) and gpu/dist/bench.mjs (bench/gpu.ts), one ESM file each, built by
# the esbuild that wrangler brings. External (shipped in node_modules by bench/gpu/pack-slim.sh):
# onnxruntime-web (its .wasm files are found beside its own module), webgpu (Dawn, a native addon).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
mkdir -p gpu/dist
for pair in gpu/host.ts:host bench/gpu.ts:bench; do
  node_modules/.bin/esbuild "${pair%%:*}" --bundle --platform=node --format=esm --target=node22 \
    --outfile="gpu/dist/${pair##*:}.mjs" --log-level=warning --minify-whitespace --minify-syntax \
    --external:onnxruntime-web --external:'onnxruntime-web/*' --external:webgpu --external:msgpackr-extract \
    --banner:js="import { createRequire as __stepkvRequire } from 'node:module'; const require = __stepkvRequire(import.meta.url);"
done
ls -l gpu/dist/*.mjs | awk '{print $5, $9}'
