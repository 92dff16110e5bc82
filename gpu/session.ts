/**
 * @module One ORT `InferenceSession` per model per isolate, created lazily and reused; runs are
 * queued (an ORT session does not run concurrently) and feeds are checked against the manifest.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-web'
import { checkFeeds, type HostTensor } from './feeds.ts'
import type { ModelManifest } from './manifest.ts'
import type { Ort } from './ort-node.ts'

/** Where a model's manifest and bytes come from (static import in workerd, a file in Node). */
export interface ModelSource {
  manifest: ModelManifest
  bytes(): Uint8Array | Promise<Uint8Array>
}

/** A host-side output: float32 data (ORT returns fresh arrays we own), dims row-major. */
export interface HostOutput {
  dims: number[]
  data: Float32Array
}

/** How a runtime's ORT session is created (the GPU host's options; the Worker uses the defaults).
 * - `executionProviders`: default `['wasm']`; `['webgpu']` with the JSEP build (`gpu/webgpu.ts`)
 * - `preferredOutputLocation`: per output name, `'gpu-buffer'` keeps that output on the device
 *   (WebGPU only; `runTensors` then returns device tensors the caller must `dispose()`)
 * - `key`: distinguishes runtimes of one model and backend with different options */
export interface RuntimeOptions {
  executionProviders?: string[]
  preferredOutputLocation?: Record<string, 'cpu' | 'gpu-buffer'>
  key?: string
}

const runtimes = new Map<string, ModelRuntime>()

/** One queue for every run on ORT's WebGPU (JSEP) backend in this process: JSEP keeps one current
 * session and checks a run's bound buffers against it, and graph capture (`static-step.ts`) replays
 * on that state, so runs of different sessions must not interleave there. */
let deviceQueue: Promise<unknown> = Promise.resolve()

/** Set by a captured run: what must run before the next uncaptured one (`onDevice`'s `clear`). */
let pendingClear: (() => Promise<void>) | undefined

/**
 * Whether ORT's JSEP may hold buffer releases it has not flushed yet: set by every uncaptured run
 * (its intermediate and uploaded buffers, outputs copied to the host) and by `noteDeviceReleases`
 * (device tensors disposed, sessions released); taken by a captured run (`takeDeviceReleases`),
 * which flushes them first only then. A replay flushes as it goes and files whatever release is
 * pending into its own session's keep-list (held until that session is released: the leak
 * `growth` measured); a flush costs a replay of the 12 × 768 model ≈ 14 ms on the H200 (bench
 * variant `noflush`), so captured runs in a row skip it. Starts set: nothing is known yet.
 */
let releasesPending = true

/** Records that ORT may hold unflushed releases (the next captured run flushes them first,
 * `takeDeviceReleases`): after a failed flush, or releases made on the queue (`releaseOnDevice`). */
export function noteDeviceReleases(): void {
  releasesPending = true
}

/** Inside a captured `onDevice` job: whether ORT may hold unflushed releases (then the job flushes
 * them before it replays, and calls `noteDeviceReleases` again if the flush fails); clears the mark. */
export function takeDeviceReleases(): boolean {
  const pending = releasesPending
  releasesPending = false
  return pending
}

/**
 * Runs `release` (device tensors disposed, an ORT session released) as a job of the device queue,
 * between runs, then marks releases pending: a release made while a captured job waits inside ORT's
 * `run()` (which awaits once per input before it replays) would be filed into that replay's
 * keep-list. Runs no clear (a release binds no buffers). Errors are logged, not thrown: the caller
 * has let go of what it releases.
 * @returns once released
 */
export function releaseOnDevice(release: () => unknown): Promise<void> {
  const job = deviceQueue.then(async () => {
    try {
      await release()
    } catch (e) {
      console.error(JSON.stringify({ level: 'error', event: 'device-release', error: String(e) }))
    } finally {
      releasesPending = true
    }
  })
  deviceQueue = job
  return job
}

/** Resolves once every job queued on the device so far (runs and releases) has finished; runs
 * nothing itself (for counts of live buffers). */
export function deviceIdle(): Promise<void> {
  return deviceQueue.then(() => undefined)
}

/**
 * Runs `fn` after every earlier WebGPU run of this process (`ModelRuntime` runs on 'webgpu' and the
 * captured steps). A `fn` that replays captured graphs passes `clear`: it then runs before the next
 * `fn` that passes none (JSEP refuses new bound buffers while the session it ran last has a captured
 * graph; `clearCapture` in `static-step.ts` makes an uncaptured session current again), and
 * captured runs that follow each other skip it (a clear that fails is logged, and `fn` runs).
 * @returns `fn`'s result
 * @throws `fn`'s error
 */
export function onDevice<T>(fn: () => Promise<T>, clear?: () => Promise<void>): Promise<T> {
  const job = deviceQueue.then(async () => {
    if (clear) {
      pendingClear = clear // set first: a replay that fails midway leaves the same state
      return fn()
    }
    const c = pendingClear
    pendingClear = undefined
    releasesPending = true // this run (and the clear) may release buffers
    // a clear that fails does not stop this run: if JSEP still holds a captured session, the run
    // itself fails with its refusal (a lost device shows there too), not an unrelated caller
    if (c) await c().catch((e) => console.error(JSON.stringify({ level: 'error', event: 'capture-clear', error: String(e) })))
    return fn()
  })
  deviceQueue = job.catch(() => undefined)
  return job
}

/** Forgets a pending clear (after a lost device: the clear's session belonged to the old one) and
 * marks releases pending. */
export function resetDeviceQueueState(): void {
  pendingClear = undefined
  releasesPending = true
}

/** A model bound to an ORT build. Get one with `ModelRuntime.for(ort, source)`. */
export class ModelRuntime {
  readonly manifest: ModelManifest
  readonly backend: string
  private readonly ort: Ort
  private readonly source: ModelSource
  private readonly options: RuntimeOptions
  private session?: Promise<InferenceSession>
  private queue: Promise<unknown> = Promise.resolve()

  private constructor(ort: Ort, source: ModelSource, backend: string, options: RuntimeOptions) {
    this.ort = ort
    this.source = source
    this.manifest = source.manifest
    this.backend = backend
    this.options = options
  }

  /** The isolate-wide runtime of this model (keyed by backend, model sha256 and `options.key`). */
  static for(ort: Ort, source: ModelSource, backend = 'wasm', options: RuntimeOptions = {}): ModelRuntime {
    const key = `${backend}:${source.manifest.sha256}${options.key ? `:${options.key}` : ''}`
    let rt = runtimes.get(key)
    if (!rt) runtimes.set(key, (rt = new ModelRuntime(ort, source, backend, options)))
    return rt
  }

  /** The ORT session, created on first use. A failed creation is not cached. */
  private getSession(): Promise<InferenceSession> {
    if (!this.session) {
      this.session = (async () => {
        const bytes = await this.source.bytes()
        return this.ort.InferenceSession.create(bytes, {
          executionProviders: this.options.executionProviders ?? ['wasm'],
          graphOptimizationLevel: 'all',
          ...(this.options.preferredOutputLocation && { preferredOutputLocation: this.options.preferredOutputLocation }),
        })
      })()
      this.session.catch(() => (this.session = undefined))
    }
    return this.session
  }

  /**
   * Drops the ORT session (after a lost GPU device, or to free it): the next run creates a new one.
   * Runs already queued finish on the old session first. Tensors it returned on the device are
   * invalid after a device loss; the caller restores its state from the durable copy.
   */
  async reset(): Promise<void> {
    const old = this.session
    this.session = undefined
    const job = this.queue.then(async () => {
      const s = await old?.catch(() => undefined)
      // its initializers' buffers: released between device runs
      if (s) await (this.backend === 'webgpu' ? releaseOnDevice(() => s.release()) : s.release().catch(() => undefined))
    })
    this.queue = job.catch(() => undefined)
    await job
  }

  /**
   * Runs the model on ORT tensors as they are (host or device), queued like `run`, without the
   * manifest check or host copies: the GPU host's device-resident path (`gpu/resident.ts`).
   * @param feeds ORT tensors per input name (the caller keeps ownership)
   * @param fetches output names (outputs listed in `preferredOutputLocation` come back on the
   *   device), or preallocated output tensors per name (ORT writes into them)
   * @returns ORT tensors the caller owns (`dispose()` device ones when done)
   */
  async runTensors(feeds: Record<string, Tensor>, fetches: string[] | Record<string, Tensor>): Promise<Record<string, Tensor>> {
    return this.enqueue(async () => (await this.getSession()).run(feeds, fetches))
  }

  /** Runs `fn` after this runtime's earlier runs (and, on WebGPU, after every WebGPU run: `onDevice`). */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const job = this.queue.then(() => (this.backend === 'webgpu' ? onDevice(fn) : fn()))
    this.queue = job.catch(() => undefined)
    return job
  }

  /** The ORT module this runtime runs on (to build tensors for `runTensors`). */
  get ortModule(): Ort {
    return this.ort
  }

  /**
   * Runs the model once. Feeds are validated first (FeedError names the input); runs are queued.
   * @param feeds every manifest input, dims per the manifest (e.g. `past_key_values.{l}.key`
   *   `[1, kvHeads, past, headDim]`)
   * @param fetches output names to return (default: all manifest outputs)
   * @returns host copies of the requested outputs, float32
   */
  async run(feeds: Record<string, HostTensor>, fetches?: string[]): Promise<Record<string, HostOutput>> {
    checkFeeds(this.manifest, feeds)
    return this.enqueue(async () => {
      const session = await this.getSession()
      const ortFeeds: Record<string, Tensor> = {}
      for (const [name, t] of Object.entries(feeds))
        ortFeeds[name] = new this.ort.Tensor(t.dtype, t.data, t.dims)
      const names = fetches ?? this.manifest.outputs.map((o) => o.name)
      const out = await session.run(ortFeeds, names)
      const result: Record<string, HostOutput> = {}
      for (const name of names) {
        const t = out[name]
        result[name] = { dims: [...t.dims], data: t.data as Float32Array }
      }
      for (const t of Object.values(ortFeeds)) t.dispose?.()
      return result
    })
  }
}
