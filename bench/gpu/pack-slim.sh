#!/usr/bin/env bash
# Rebuilds .device/ for the GPU bench with only what it needs, under the 64 MiB carry limit:
#   .device/node.xz, gl/, setup.sh   from ../shared/device/pack.sh (run first if missing)
#   .device/dist.tar.xz              the bundles gpu/dist/{host,bench}.mjs (bench/gpu/build.sh)
#   .device/nm.tar.xz                node_modules with only: onnxruntime-web (package.json, the JSEP
#                                    and wasm bundle builds, their two .wasm and .mjs glue), onnxruntime-common,
#                                    webgpu (index.js + dist/linux-x64/dawn.node): the bundles' externals
# Prints the total that travels (tracked + untracked non-ignored files + .device/).
# Then on the GPU machine, with carry [".device"]:  source .device/setup.sh && bash bench/gpu/run.sh
# DEVICE_DIR=DIR writes there instead of .device/ (e.g. to try it without replacing another job's).
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
if [ ! -f .device/node.xz ] || [ ! -f .device/setup.sh ] || [ ! -d .device/gl ]; then
  bash ../shared/device/pack.sh
fi
dev=${DEVICE_DIR:-.device}
if [ "$dev" != .device ]; then mkdir -p "$dev" && cp -r .device/node.xz .device/gl .device/setup.sh "$dev/"; fi
bash bench/gpu/build.sh
rm -rf "$dev/dist" && tar -cf - gpu/dist/host.mjs gpu/dist/bench.mjs | xz -T2 -9e > "$dev/dist.tar.xz"
stage=$(mktemp -d); trap 'rm -rf "$stage"' EXIT
nm=$stage/node_modules
mkdir -p "$nm/onnxruntime-web/dist" "$nm/webgpu/dist"
cp node_modules/onnxruntime-web/package.json "$nm/onnxruntime-web/"
for f in ort.all.bundle.min.mjs ort.wasm.bundle.min.mjs ort-wasm-simd-threaded.jsep.wasm ort-wasm-simd-threaded.wasm \
  ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.jsep.mjs; do  # the bundles import the .mjs glue in Node
  cp "node_modules/onnxruntime-web/dist/$f" "$nm/onnxruntime-web/dist/"
done
cp -r node_modules/onnxruntime-common "$nm/"
find "$nm/onnxruntime-common" -name '*.map' -delete
cp node_modules/webgpu/package.json node_modules/webgpu/index.js "$nm/webgpu/"
cp -r node_modules/webgpu/dist/linux-x64 "$nm/webgpu/dist/"
tar -C "$stage" -cf - node_modules | xz -T2 -9e > "$dev/nm.tar.xz"
bytes() { du -cb "$@" 2>/dev/null | tail -1 | cut -f1; }
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | grep total$ | awk '{s+=$1} END {print s}')
untracked=$( (git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | { grep total$ || true; } | awk '{s+=$1} END {print s+0}') )
device=$(bytes "$dev")
total=$((tracked + untracked + device))
printf 'nm.tar.xz %s B · device dir %s B · tracked %s B · untracked %s B · total %s B (%.1f MiB of 64)\n' \
  "$(stat -c %s "$dev/nm.tar.xz")" "$device" "$tracked" "$untracked" "$total" "$(echo "$total / 1048576" | bc -l)"
[ "$total" -lt $((64 * 1048576)) ] || { echo "over the 64 MiB carry limit" >&2; exit 1; }
