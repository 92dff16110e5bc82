/**
 * @module Backend selection for Node hosts by capability: `navigator.gpu` present (a browser-like
 * runtime, or Dawn through the `webgpu` npm package with an adapter) → ORT-web's JSEP build
 * (`onnxruntime-web/all`, execution provider `webgpu`), else the plain wasm build. Includes the
 * `GPUQueue.writeBuffer` fix Dawn needs under JSEP, a live-buffer counter (GPU memory growth
 * checks) and a dispatch counter (dispatches per step). Recipe and measurements:
 * `../shared/research/PLATFORM-NOTES.md`.
 */
import type { Ort } from './ort-node.ts'
import { ortForNode } from './ort-node.ts'

/** Where a host's models run. */
export type Backend = 'webgpu' | 'wasm'

/** The ORT build and execution providers a host uses, and why that backend was chosen. */
export interface BackendChoice {
  backend: Backend
  ort: Ort
  executionProviders: string[]
  /** Human-readable reason (adapter description, or why WebGPU was not used). */
  reason: string
}

type GpuLike = { requestAdapter(options?: unknown): Promise<unknown> }
const g = globalThis as unknown as { navigator?: { gpu?: GpuLike }; GPUQueue?: { prototype: Record<string, unknown> } }

let patched = false

/**
 * Wraps `GPUQueue.prototype.writeBuffer` so a `SharedArrayBuffer`-backed view (the threaded wasm
 * memory ORT's JSEP passes) is copied into a fresh `Uint8Array` first: Dawn's binding rejects it
 * with `no overload matched for writeBuffer`. Trailing `undefined` arguments are dropped. Idempotent;
 * a no-op without `GPUQueue`.
 */
export function patchWriteBuffer(): void {
  const proto = g.GPUQueue?.prototype
  if (!proto || patched) return
  const original = proto.writeBuffer as (...args: unknown[]) => void
  proto.writeBuffer = function (this: unknown, buffer: unknown, offset: number, data: unknown, dataOffset?: number, size?: number) {
    let bytes = data
    if (ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer) {
      const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      const elem = (data as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1
      const from = (dataOffset ?? 0) * elem
      const to = size === undefined ? view.byteLength : from + size * elem
      bytes = view.slice(from, to)
      return original.call(this, buffer, offset, bytes)
    }
    if (data instanceof SharedArrayBuffer) {
      const from = dataOffset ?? 0
      bytes = new Uint8Array(data).slice(from, size === undefined ? undefined : from + size)
      return original.call(this, buffer, offset, bytes)
    }
    const args = [buffer, offset, bytes, dataOffset, size]
    while (args.length > 3 && args[args.length - 1] === undefined) args.pop()
    return original.apply(this, args)
  }
  patched = true
}

/**
 * Makes `navigator.gpu` available in Node when it is not: loads the `webgpu` package (Dawn) and
 * installs its globals. Needs a Vulkan loader and driver on Linux (`.device/setup.sh` sets them
 * up on the GPU machine).
 * @returns true when `navigator.gpu` exists afterwards (an adapter may still be missing)
 */
export async function installNodeWebGpu(): Promise<boolean> {
  if (g.navigator?.gpu) return true
  try {
    const pkg = 'webgpu' // a variable: bundlers leave the import alone (the package ships native code)
    const { create, globals } = (await import(pkg)) as { create(flags: string[]): GpuLike; globals: object }
    Object.assign(globalThis, globals)
    const gpu = create([])
    if (g.navigator) Object.assign(g.navigator, { gpu })
    else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true })
    return true
  } catch {
    return false
  }
}

/**
 * Picks the backend: `prefer` 'wasm' → wasm; 'auto' or 'webgpu' → WebGPU when `navigator.gpu`
 * exists (installing Dawn in Node if needed) and gives an adapter, else wasm ('auto') or an error.
 * @throws Error when `prefer` is 'webgpu' and no adapter is found (the message says why)
 */
export async function selectBackend(prefer: 'auto' | Backend = 'auto'): Promise<BackendChoice> {
  const wasm = (reason: string): BackendChoice => ({ backend: 'wasm', ort: ortForNode(), executionProviders: ['wasm'], reason })
  if (prefer === 'wasm') return wasm('wasm requested')
  const have = await installNodeWebGpu()
  const adapter = have ? ((await g.navigator!.gpu!.requestAdapter().catch(() => null)) as { info?: { description?: string; vendor?: string } } | null) : null
  if (!adapter) {
    const why = have ? 'navigator.gpu gives no adapter' : 'no navigator.gpu (the webgpu package did not load)'
    if (prefer === 'webgpu') throw new Error(`WebGPU requested but unavailable: ${why}`)
    return wasm(why)
  }
  patchWriteBuffer()
  const ort = (await import('onnxruntime-web/all')) as unknown as Ort
  ort.env.wasm.numThreads = 1
  ort.env.wasm.proxy = false
  const desc = adapter.info ? `${adapter.info.vendor ?? ''} ${adapter.info.description ?? ''}`.trim() : 'adapter'
  return { backend: 'webgpu', ort, executionProviders: ['webgpu'], reason: desc || 'adapter' }
}

/** Counts of GPU objects, for growth checks and dispatches per step. */
export interface GpuCounters {
  /** Buffers created minus destroyed. */
  liveBuffers: number
  /** Bytes of live buffers. */
  liveBytes: number
  /** `dispatchWorkgroups` calls so far. */
  dispatches: number
}

const counters: GpuCounters = { liveBuffers: 0, liveBytes: 0, dispatches: 0 }
let counting = false
/** Live buffers per `usage flags:size` (what a growth check reports when buffers pile up). */
const liveKinds = new Map<string, number>()

/** The most common kinds of live buffers, `usage flags (hex):size bytes` → count, largest first. */
export function liveBufferKinds(top = 8): Record<string, number> {
  return Object.fromEntries([...liveKinds].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]).slice(0, top))
}

/**
 * Installs counters on `GPUDevice.createBuffer`, `GPUBuffer.destroy` and
 * `GPUComputePassEncoder.dispatchWorkgroups` (WebGPU globals must exist: call after
 * `selectBackend`). Idempotent.
 * @returns the live counters object (read it before and after a step)
 */
export function countGpuObjects(): GpuCounters {
  const G = globalThis as unknown as Record<string, { prototype: Record<string, unknown> } | undefined>
  if (counting || !G.GPUDevice || !G.GPUBuffer) return counters
  const sizes = new WeakMap<object, { size: number; kind: string }>()
  const create = G.GPUDevice.prototype.createBuffer as (d: { size: number; usage?: number }) => object
  G.GPUDevice.prototype.createBuffer = function (this: unknown, descriptor: { size: number; usage?: number }) {
    const buffer = create.call(this, descriptor)
    const kind = `${(descriptor.usage ?? 0).toString(16)}:${descriptor.size}`
    sizes.set(buffer, { size: descriptor.size, kind })
    liveKinds.set(kind, (liveKinds.get(kind) ?? 0) + 1)
    counters.liveBuffers++
    counters.liveBytes += descriptor.size
    return buffer
  }
  const destroy = G.GPUBuffer.prototype.destroy as () => void
  G.GPUBuffer.prototype.destroy = function (this: object) {
    const rec = sizes.get(this)
    if (rec !== undefined) {
      sizes.delete(this)
      liveKinds.set(rec.kind, (liveKinds.get(rec.kind) ?? 1) - 1)
      counters.liveBuffers--
      counters.liveBytes -= rec.size
    }
    return destroy.call(this)
  }
  const pass = G.GPUComputePassEncoder?.prototype
  if (pass) {
    const dispatch = pass.dispatchWorkgroups as (...a: unknown[]) => void
    pass.dispatchWorkgroups = function (this: unknown, ...a: unknown[]) {
      counters.dispatches++
      return dispatch.apply(this, a)
    }
  }
  counting = true
  return counters
}

/** Waits until the GPU has finished all work submitted so far (no-op on wasm). */
export async function syncDevice(ort: Ort): Promise<void> {
  type Device = { queue: { onSubmittedWorkDone(): Promise<void> } }
  // typed as a Promise in onnxruntime-common; JSEP gives the device itself (undefined before a session)
  const device = (await (ort.env as unknown as { webgpu?: { device?: Device | Promise<Device> } }).webgpu?.device) as Device | undefined
  if (device?.queue) await device.queue.onSubmittedWorkDone()
}

/** True when an error means the GPU device or adapter is gone (recreate the ORT sessions). */
export function isDeviceLoss(e: unknown): boolean {
  const text = String((e as Error)?.message ?? e)
  return /device (was )?lost|DeviceLost|GPUDevice.*(destroyed|lost)|adapter.*lost|runtime lost/i.test(text)
}
