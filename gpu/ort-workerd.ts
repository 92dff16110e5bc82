/**
 * @module onnxruntime-web (wasm backend) inside workerd (wrangler dev, the vitest Workers pool,
 * production Workers). Workers forbid compiling wasm from bytes at run time and have no
 * `import.meta.url`, so the bundle build is used and the `.wasm` is imported as a precompiled
 * `WebAssembly.Module` (wrangler's CompiledWasm rule), handed to ORT through a sentinel
 * `wasmBinary` that a `WebAssembly.instantiate` wrapper recognises. Measured recipe:
 * `../shared/research/PLATFORM-NOTES.md`.
 */
import * as ort from 'onnxruntime-web/wasm'
import ortWasm from 'onnxruntime-web/ort-wasm-simd-threaded.wasm'
import type { Ort } from './ort-node.ts'

const SENTINEL = new ArrayBuffer(8)
let configured = false

/** Returns onnxruntime-web configured for workerd: one wasm thread, no proxy, precompiled module. */
export function ortForWorkerd(): Ort {
  if (configured) return ort
  const instantiate = WebAssembly.instantiate.bind(WebAssembly) as (
    src: BufferSource | WebAssembly.Module,
    imports?: WebAssembly.Imports,
  ) => Promise<unknown>
  ;(WebAssembly as unknown as { instantiate: unknown }).instantiate = async (
    src: unknown,
    imports?: WebAssembly.Imports,
  ) =>
    src instanceof Uint8Array && src.buffer === SENTINEL
      ? { instance: await instantiate(ortWasm as WebAssembly.Module, imports), module: ortWasm }
      : instantiate(src as BufferSource, imports)
  ort.env.wasm.numThreads = 1
  ort.env.wasm.proxy = false
  ort.env.wasm.wasmBinary = SENTINEL
  configured = true
  return ort
}
