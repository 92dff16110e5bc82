#!/usr/bin/env bash
# Bundles train/gen.ts (and the simulators it imports) into one file, train/dist/gen.mjs, which
# runs on plain Node ≥ 20 with no node_modules (the GPU machine brings only Node).
set -euo pipefail
cd "$(dirname "$0")/.."
npx esbuild train/gen.ts --bundle --platform=node --format=esm --target=node20 \
  --legal-comments=none --outfile=train/dist/gen.mjs --log-level=warning
echo "bundled train/dist/gen.mjs ($(wc -c < train/dist/gen.mjs) bytes)"
npx esbuild train/eval.ts --bundle --platform=node --format=esm --target=node20 \
  --legal-comments=none --external:onnxruntime-web --outfile=train/dist/eval.mjs --log-level=warning
echo "bundled train/dist/eval.mjs ($(wc -c < train/dist/eval.mjs) bytes; onnxruntime-web from node_modules)"
