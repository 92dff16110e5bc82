#!/usr/bin/env bash
# What WebGPU needs on the GPU machine, printed before the bench (after source .device/setup.sh):
# the NVIDIA Vulkan ICD and its libraries, the loader's view, and whether Dawn gives an adapter.
# Prints "adapter ok: ..." on success. Usage: bash bench/gpu/diag.sh
set -u
echo "== env"; env | grep -E '^(NVIDIA|VK_|LD_LIBRARY)' | sort
echo "== nvidia-smi"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== ICD files"; ls -la /usr/local/nvidia/share/vulkan/icd.d/ /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d/ 2>&1
for f in /usr/local/nvidia/share/vulkan/icd.d/*.json /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; do
  [ -f "$f" ] && { echo "-- $f"; cat "$f"; }
done
echo "== NVIDIA GL/Vulkan libraries"; ldconfig -p | grep -E 'GLX_nvidia|nvidia-glcore|nvidia-glvkspirv|nvidia-gpucomp|EGL_nvidia|libvulkan|nvidia-tls' | sort
ls -la /usr/local/nvidia/lib64 2>/dev/null | grep -E 'GLX|glcore|glvk|gpucomp|EGL|tls' | head -20
echo "== adapter"
cat > /tmp/stepkv-adapter.mjs <<'JS'
import { create, globals } from 'webgpu'
Object.assign(globalThis, globals)
const gpu = create([])
const a = await gpu.requestAdapter()
if (!a) { console.log('adapter: none'); process.exit(1) }
const info = a.info ?? {}
console.log('adapter ok:', info.vendor, info.architecture, info.device, info.description)
JS
cp /tmp/stepkv-adapter.mjs ./.stepkv-adapter.mjs
# the configured ICD first, then every other NVIDIA ICD file on the machine, then ICD files written
# here for the EGL and GLX libraries; the first that gives an adapter goes to /tmp/stepkv-vk-icd
# (run.sh exports it as VK_DRIVER_FILES)
rm -f /tmp/stepkv-vk-icd
cands=("${VK_DRIVER_FILES:-}")
while IFS= read -r f; do cands+=("$f"); done < <(find /usr /etc /opt -xdev \( -name 'nvidia_icd*.json' -o -name '*nvidia*icd*.json' \) 2>/dev/null | sort -u)
for lib in libEGL_nvidia.so.0 libGLX_nvidia.so.0; do
  j=/tmp/stepkv-icd-${lib%%.*}.json
  printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$lib" > "$j"
  cands+=("$j")
done
for icd in "${cands[@]}"; do
  [ -n "$icd" ] && [ -f "$icd" ] || continue
  echo "-- VK_DRIVER_FILES=$icd"
  out=$(VK_DRIVER_FILES=$icd VK_LOADER_DEBUG=error,warn timeout 60 node ./.stepkv-adapter.mjs 2>&1)
  echo "$out" | tail -12
  if echo "$out" | grep -q '^adapter ok'; then echo "$icd" > /tmp/stepkv-vk-icd; echo "USING $icd"; break; fi
done
rm -f ./.stepkv-adapter.mjs
[ -f /tmp/stepkv-vk-icd ]
