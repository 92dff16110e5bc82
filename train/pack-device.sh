#!/usr/bin/env bash
# Rebuilds .device/ for a training run on the GPU machine (train/run_all.sh), under the 64 MiB carry
# limit (bench/gpu/pack-slim.sh builds the GPU bench's instead: the two replace each other):
#   .device/node.xz, gl/, setup.sh   from ../shared/device/pack.sh (run first if missing)
#   .device/nm.tar.xz                node_modules with only onnxruntime-web's wasm build (+ its .mjs
#                                    glue) and onnxruntime-common: what train/dist/eval.mjs imports
#   .device/init.tar.gz              optional: an earlier run's stepkv-ckpt.tar.gz, to continue training
# Usage: bash train/pack-device.sh [CKPT_TAR_GZ]
# Then on the GPU machine, with carry [".device"]:
#   source .device/setup.sh && mkdir -p train/work/init && tar -xzf .device/init.tar.gz -C train/work/init \
#     && INIT_DIR=train/work/init/ckpt OUT=$OUT WORK=train/work bash train/run_all.sh
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
if [ ! -f .device/node.xz ] || [ ! -f .device/setup.sh ] || [ ! -d .device/gl ]; then bash ../shared/device/pack.sh; fi
rm -f .device/dist.tar.xz .device/init.tar.gz
stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
nm=$stage/node_modules
mkdir -p "$nm/onnxruntime-web/dist"
cp node_modules/onnxruntime-web/package.json "$nm/onnxruntime-web/"
for f in ort.wasm.bundle.min.mjs ort-wasm-simd-threaded.wasm ort-wasm-simd-threaded.mjs; do
  cp "node_modules/onnxruntime-web/dist/$f" "$nm/onnxruntime-web/dist/"
done
cp -r node_modules/onnxruntime-common "$nm/"
find "$nm/onnxruntime-common" -name '*.map' -delete
tar -C "$stage" -cf - node_modules | xz -T2 -9e > .device/nm.tar.xz
if [ $# -ge 1 ]; then cp "$1" .device/init.tar.gz; fi
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | { grep total$ || true; } | awk '{s+=$1} END {print s+0}')
untracked=$( (git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | { grep total$ || true; } | awk '{s+=$1} END {print s+0}') )
device=$(du -cb .device | tail -1 | cut -f1)
total=$((tracked + untracked + device))
printf 'device dir %s B · tracked %s B · untracked %s B · total %s B (%.1f MiB of 64)\n' "$device" "$tracked" "$untracked" "$total" "$(echo "$total / 1048576" | bc -l)"
[ "$total" -lt $((64 * 1048576)) ] || { echo "over the 64 MiB carry limit" >&2; exit 1; }
