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

const runtimes = new Map<string, ModelRuntime>()

/** A model bound to an ORT build. Get one with `ModelRuntime.for(ort, source)`. */
export class ModelRuntime {
  readonly manifest: ModelManifest
  readonly backend: string
  private readonly ort: Ort
  private readonly source: ModelSource
  private session?: Promise<InferenceSession>
  private queue: Promise<unknown> = Promise.resolve()

  private constructor(ort: Ort, source: ModelSource, backend: string) {
    this.ort = ort
    this.source = source
    this.manifest = source.manifest
    this.backend = backend
  }

  /** The isolate-wide runtime of this model (keyed by backend and model sha256). */
  static for(ort: Ort, source: ModelSource, backend = 'wasm'): ModelRuntime {
    const key = `${backend}:${source.manifest.sha256}`
    let rt = runtimes.get(key)
    if (!rt) runtimes.set(key, (rt = new ModelRuntime(ort, source, backend)))
    return rt
  }

  /** The ORT session, created on first use. A failed creation is not cached. */
  private getSession(): Promise<InferenceSession> {
    if (!this.session) {
      this.session = (async () => {
        const bytes = await this.source.bytes()
        return this.ort.InferenceSession.create(bytes, {
          executionProviders: ['wasm'],
          graphOptimizationLevel: 'all',
        })
      })()
      this.session.catch(() => (this.session = undefined))
    }
    return this.session
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
    const job = this.queue.then(async () => {
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
    this.queue = job.catch(() => undefined)
    return job
  }
}
