/**
 * @module The GPU host's sessions: held in memory (device-resident K/V for float32 storage, float16
 * with `float16Resident`, KIVI with a host mirror, `resident.ts`), one ORT session per model shared by all (runs queued in `ModelRuntime`), steps of
 * one session serialized. A durable copy is written after each step or every `durableEvery` steps
 * (write-behind) and whenever a session leaves memory; at most `maxHot` sessions are held, the least
 * recently used is evicted to the durable store past that. A lost device (or any lost runtime)
 * recreates the ORT sessions, restores every session from its durable copy and retries the step
 * once; steps after the durable copy are lost and the reply says so (`restored`), unless the
 * session's memory was on the host (round trip, KIVI mirror): its copy is written first.
 */
import type { Adapter } from '../agents/adapter.ts'
import { adapterFor } from '../agents/index.ts'
import { decodeMemory, encodeMemory } from '../memory/codec.ts'
import { BadRequestError, NotFoundError, SeqConflictError, StepkvError } from '../memory/errors.ts'
import { resolveKivi } from '../memory/kivi.ts'
import { roundTrip } from '../memory/storage.ts'
import { summary } from '../memory/session.ts'
import type { Policy, SessionMemory } from '../memory/types.ts'
import { packReply, unpackBody } from '../worker/body.ts'
import { initialMemory, policyFor, runStep, type EngineLimits, type StepRequest } from '../worker/engine.ts'
import { expectedShape, storageOf } from '../worker/import-check.ts'
import { CorruptRecordError, type DurableStore, type HostSessionConfig } from './durable.ts'
import { buildKvGather, checkHalfRounding } from './kv-gather.ts'
import type { ModelManifest } from './manifest.ts'
import { materialize, residentFrom, residentStep, residentSupported, residentTempoStep, disposeResident, type ResidentMemory } from './resident.ts'
import { ModelRuntime, onDevice, type ModelSource } from './session.ts'
import { resetCaptureHelpers, residentStaticStep, residentStaticTempoStep, staticSupported, staticTempoSupported } from './static-step.ts'
import { isDeviceLoss, type BackendChoice } from './webgpu.ts'

/** Host settings. */
export interface HostOptions {
  choice: BackendChoice
  store: DurableStore
  /** Model sources by id (`gpu/node-models.ts` in Node). @throws NotFoundError for an unknown id */
  model(id: string): { decoder: ModelSource; encoder?: ModelSource }
  /** Write the durable copy every K steps (1 = after each step). Default 1. */
  durableEvery?: number
  /** Most sessions held in memory; past it the least recently used is evicted. Default 64. */
  maxHot?: number
  /** Keep K/V on the device between steps (float32 storage; float16 with `float16Resident`; KIVI
   * with a host mirror, on the dynamic layout). Default true. */
  resident?: boolean
  /**
   * Fixed-capacity layout of resident K/V (tokens per head; absent or 0: off): the past is fed as
   * `capacity` rows with `attention_mask` 0 on the empty ones, so its shape stays the same from
   * step to step while a bounded policy's memory fills up (doubled when the memory outgrows it).
   */
  fixedCapacity?: number
  /**
   * Run fixed-capacity sessions on the float-table variant of the model (`static-step.ts`), with
   * ORT's graph capture on WebGPU (on wasm the same graph, uncaptured). Needs `fixedCapacity`;
   * applies to carried-KV policies on models without TempoFit ports, and to TempoFit banks unless
   * `captureTempo` is false (others keep the resident path). Default false.
   */
  capture?: boolean
  /**
   * With `capture`: TempoFit banks too (`residentStaticTempoStep`: the fixed TempoFit graph, the bank
   * in `fixedCapacity` slots). Default: as `capture` (checked on the H200 step by step against wasm,
   * no buffer growth over 1,000 steps); false keeps banks on the dynamic resident path.
   */
  captureTempo?: boolean
  /**
   * Keep float16 sessions on the device (`ResidentMemory.half`: the gathers round every kept row to
   * float16 as a reload does) where the backend passed the start-up rounding check
   * (`prepare()`); else they round-trip. Default: as `resident`. Checked on the H200 (session 6):
   * the rounding matched the codec on all 98,304 probe values and flagged a NaN; float16 sessions,
   * carried K/V and TempoFit, dynamic and captured, within 1e-4 of wasm step by step; no buffer
   * growth over 1,000 captured float16 steps.
   */
  float16Resident?: boolean
  limits?: EngineLimits
}

/** Whether a kept reply decodes (a file cut short by a crash is dropped, not replayed). */
function readable(packed: Uint8Array): boolean {
  try {
    unpackBody(packed)
    return true
  } catch {
    return false
  }
}

/** Forwarding state check: the caller's tag before the step and the tag after it. */
export interface Forwarding {
  base: string
  next: string
}

/** A step reply (msgpack bytes; JSON callers unpack them), plus what the forwarding caller persists. */
export interface HostStepReply {
  packed: Uint8Array
  /** True when this is the stored reply of a repeated seq (nothing ran). */
  replayed: boolean
  /** The durable copy written by this step (forwarded steps carry it back to the Durable Object). */
  durable?: { seq: number; memory: Uint8Array }
}

interface Hot {
  id: string
  config: HostSessionConfig
  policy: Policy
  seq: number
  tag?: string
  durableSeq: number
  /** Host memory (round-trip path) or device-resident memory. */
  memory?: SessionMemory
  resident?: ResidentMemory
  /** The packed reply of step `seq` (replayed to a retry of that step only while the session is at it). */
  lastReply?: { seq: number; packed: Uint8Array }
  restored?: { fromSeq: number; lostSteps: number }
}

/**
 * A session's storage options, as the Worker checks them (`worker/app.ts`, `session-object.ts`):
 * KIVI options only with memoryDtype 'kivi', and valid for a memory of `layers` stored layers.
 * @throws BadRequestError `invalid_storage` (400)
 */
function checkStorage(config: HostSessionConfig, layers: number): void {
  const { memoryDtype, kivi } = config
  if (kivi && memoryDtype !== 'kivi') throw new BadRequestError(`kivi options need memoryDtype 'kivi' (got '${memoryDtype}')`, {}, 'invalid_storage')
  if (memoryDtype !== 'kivi') return
  try {
    resolveKivi(kivi, layers)
  } catch (e) {
    if (e instanceof RangeError) throw new BadRequestError(`invalid storage options: ${e.message}`, {}, 'invalid_storage')
    throw e
  }
}

/** Per ORT module: whether its half gather rounds as the codec (`checkHalfRounding`), run once, on
 * the device queue on WebGPU. */
const halfChecks = new WeakMap<object, Promise<{ ok: boolean; why: string }>>()
function halfSupport(choice: BackendChoice): Promise<{ ok: boolean; why: string }> {
  let p = halfChecks.get(choice.ort)
  if (!p) {
    const run = () => checkHalfRounding(choice.ort, choice.executionProviders)
    p = (choice.backend === 'webgpu' ? onDevice(run) : run()).then(
      (c) => ({ ok: c.ok, why: c.ok ? `the half gather rounds ${c.values} probe values as the codec` : `${c.mismatches} of ${c.values} probe values differ from the codec (first ${JSON.stringify(c.first[0])}), kv_absmax ${c.absmax} for ${c.absmaxWant}, NaN ${c.nanFlagged ? '' : 'not '}flagged: float16 sessions round-trip` }),
      (e: unknown) => ({ ok: false, why: `the half gather failed (${String((e as Error)?.message ?? e).split('\n')[0]}): float16 sessions round-trip` }),
    )
    halfChecks.set(choice.ort, p)
  }
  return p
}

export class HostSessions {
  readonly backend: string
  private readonly o: Required<Omit<HostOptions, 'limits'>> & { limits: EngineLimits }
  private readonly hot = new Map<string, Hot>()
  private readonly locks = new Map<string, Promise<unknown>>()
  private readonly runtimes = new Set<ModelRuntime>()
  /** Device losses recovered from (tests and the health route read it). */
  recoveries = 0
  /** The backend's half-gather check (`prepare`), once asked for. */
  private halfCheck?: Promise<void>
  private half?: { ok: boolean; why: string }

  constructor(options: HostOptions) {
    this.o = { durableEvery: 1, maxHot: 64, resident: true, fixedCapacity: 0, capture: false, limits: { maxPrefixTokens: 4096, maxMemoryTokens: 65_536 }, ...options, captureTempo: options.captureTempo ?? options.capture ?? false, float16Resident: options.float16Resident ?? options.resident ?? true }
    if (!Number.isInteger(this.o.durableEvery) || this.o.durableEvery < 1) throw new RangeError(`durableEvery must be an integer ≥ 1, got ${this.o.durableEvery}`)
    if (!Number.isInteger(this.o.maxHot) || this.o.maxHot < 1) throw new RangeError(`maxHot must be an integer ≥ 1, got ${this.o.maxHot}`)
    const fc = this.o.fixedCapacity
    if (fc !== undefined && !(Number.isInteger(fc) && fc >= 0 && fc <= 65_536)) throw new RangeError(`fixedCapacity must be an integer in 0…65536, got ${fc}`)
    if (this.o.capture && !(fc > 0 && this.o.resident)) throw new RangeError('capture needs a fixed capacity (fixedCapacity > 0) and resident K/V')
    if (this.o.captureTempo && !this.o.capture) throw new RangeError('captureTempo needs capture')
    this.backend = options.choice.backend
  }

  /** Sessions held in memory now. */
  get hotCount(): number {
    return this.hot.size
  }

  /** The settings in force (health route, README). */
  get settings() {
    return { backend: this.backend, durableEvery: this.o.durableEvery, maxHot: this.o.maxHot, resident: this.o.resident, fixedCapacity: this.o.fixedCapacity || 0, capture: this.o.capture, captureTempo: this.o.captureTempo, float16Resident: this.float16Resident, ...(this.half && { float16Check: this.half.why }) }
  }

  /**
   * Creates session `id` with an empty memory (durable at seq 0).
   * @throws PolicyConfigError (400) for a bad policy, NotFoundError for an unknown model,
   *   StepkvError `session_exists` (409) when the id is taken
   */
  async create(id: string, config: HostSessionConfig): Promise<Record<string, unknown>> {
    await this.prepare()
    return this.exclusive(id, async () => {
      if (this.hot.has(id) || (await this.stored(id))) throw new StepkvError('session_exists', 409, `session '${id}' exists`)
      await this.o.store.deleteReply(id) // a reply left by a crash between the two deletes
      const { manifest } = this.model(config.model)
      const policy = policyFor(manifest, config.policy.name, config.policy.params)
      const cfg = { ...config, policy: { name: policy.name, params: { ...policy.params } } }
      const memory = initialMemory(manifest, policy)
      checkStorage(cfg, memory.layers.length)
      const h: Hot = { id, config: cfg, policy, seq: 0, durableSeq: 0, memory }
      await this.writeDurable(h, memory)
      this.admit(h)
      return this.describe(h)
    })
  }

  /**
   * Adopts a session state from its forwarding Durable Object (the host did not have it, or had
   * another state): the blob of step `memory.seq`, while the session has run `seq` steps.
   * @throws MemoryCodecError (422) for a blob that does not decode for this model and policy
   */
  async seed(id: string, config: HostSessionConfig, seq: number, tag: string, blob: Uint8Array): Promise<Record<string, unknown>> {
    await this.prepare()
    return this.exclusive(id, async () => {
      const { manifest } = this.model(config.model)
      const policy = policyFor(manifest, config.policy.name, config.policy.params)
      const decoded = decodeMemory(blob, expectedShape(manifest, config))
      const { memory } = decoded
      if (memory.seq > seq) throw new StepkvError('invalid_request', 400, `memory of step ${memory.seq} for a session at seq ${seq}`)
      if (decoded.policy.name !== policy.name)
        throw new StepkvError('invalid_request', 400, `a memory of policy '${decoded.policy.name}' for a session of policy '${policy.name}'`)
      config = { ...config, policy: { name: policy.name, params: { ...policy.params } } } // as create stores it
      checkStorage(config, memory.layers.length)
      await this.drop(id)
      const h: Hot = { id, config, policy, seq, tag, durableSeq: memory.seq, memory }
      if (memory.seq < seq) h.restored = { fromSeq: memory.seq, lostSteps: seq - memory.seq }
      await this.o.store.deleteReply(id) // the replaced state's reply describes another memory
      await this.o.store.put(id, { config, seq, memorySeq: memory.seq, tag, memory: blob })
      this.admit(h)
      return this.describe(h)
    })
  }

  /**
   * Runs one step. Standalone callers follow the Worker's seq rules (seq = last + 1; the last seq
   * again replays its reply); forwarded steps carry the caller's state tags instead (the Durable
   * Object enforced the seq rules) and get 409 `host_state_mismatch` when the host holds another
   * state, or 404 when it holds none: the caller then seeds it (`seed`).
   * @param limits per-step limits tighter than the host's (the forwarding tenant's tokens per step)
   * @throws SeqConflictError (409), NotFoundError (404), the engine's 4xx errors; a device loss is
   *   recovered from once (the step retried), a second one is StepkvError `gpu_device_lost` (503)
   */
  async step(id: string, request: StepRequest, forwarding?: Forwarding, limits: Partial<EngineLimits> = {}): Promise<HostStepReply> {
    await this.prepare()
    return this.exclusive(id, async () => {
      const t0 = performance.now()
      const h = await this.load(id)
      const loadMs = performance.now() - t0 // reading and decoding the durable copy when not held
      if (forwarding) {
        if (h.tag !== forwarding.base)
          throw new StepkvError('host_state_mismatch', 409, `the GPU host holds state ${h.tag ?? '(none)'} of this session, the caller ${forwarding.base}`, { hostTag: h.tag ?? null })
      } else {
        if (request.seq === h.seq && h.seq > 0 && h.lastReply?.seq === h.seq) return { packed: h.lastReply.packed, replayed: true }
        if (request.seq !== h.seq + 1) throw new SeqConflictError(`expected seq ${h.seq + 1}, got ${request.seq}`, { lastSeq: h.seq, expectedSeq: h.seq + 1 })
      }
      let cur = h
      let result: { reply: Record<string, unknown>; durable?: HostStepReply['durable'] }
      try {
        result = await this.run(cur, request, forwarding, limits, loadMs)
      } catch (e) {
        if (!isDeviceLoss(e)) throw e
        await this.recover()
        cur = await this.load(id)
        try {
          result = await this.run(cur, request, forwarding, limits)
        } catch (again) {
          if (!isDeviceLoss(again)) throw again
          await this.recover()
          throw new StepkvError('gpu_device_lost', 503, 'the GPU device was lost twice during this step; the session is kept at its durable copy, retry later', { durableSeq: cur.durableSeq })
        }
      }
      cur.lastReply = { seq: request.seq, packed: packReply(result.reply) }
      return { packed: cur.lastReply.packed, replayed: false, durable: result.durable }
    })
  }

  /** Session summary: seq, durableSeq, memory tokens, where the memory lives. @throws NotFoundError */
  async info(id: string): Promise<Record<string, unknown>> {
    await this.prepare() // `describe` names the path, which depends on the float16 check
    return this.exclusive(id, async () => this.describe(await this.load(id)))
  }

  /** The current memory as an SKVM blob (downloads device K/V) and its seq. @throws NotFoundError */
  async exportMemory(id: string): Promise<{ seq: number; memory: Uint8Array }> {
    return this.exclusive(id, async () => {
      const h = await this.load(id)
      const mem = h.memory ?? (await materialize(h.resident!))
      return { seq: h.seq, memory: encodeMemory(mem, { policy: h.config.policy, ...storageOf(h.config) }) }
    })
  }

  /** Deletes a session (memory, device buffers, durable copy), without reading its durable copy
   * (a copy that cannot be read can still be deleted). @throws NotFoundError */
  async close(id: string): Promise<void> {
    return this.exclusive(id, async () => {
      if (!this.hot.has(id) && !(await this.stored(id))) throw new NotFoundError('unknown session', {}, 'unknown_session')
      await this.drop(id)
      await this.o.store.delete(id)
    })
  }

  /** Writes every dirty session's durable copy (shutdown). */
  async flushAll(): Promise<void> {
    // every session, whatever one of them throws (logged): one full disk must not cost the others
    for (const h of [...this.hot.values()])
      await this.exclusive(h.id, () => this.flush(h)).catch((e) => console.error(JSON.stringify({ level: 'error', event: 'flush', session: h.id, error: String(e) })))
  }

  // -- internals --------------------------------------------------------------------------------

  private model(id: string) {
    const src = this.o.model(id)
    return { manifest: src.decoder.manifest, src }
  }

  private runtimeFor(id: string, resident: boolean): ModelRuntime {
    const { src } = this.model(id)
    const { ort, backend, executionProviders } = this.o.choice
    // carried K/V (`present.*`) and a TempoFit step's bank rows (`tempo_prefix.*`) stay on the device
    const present = src.decoder.manifest.outputs.filter((o) => o.name.startsWith('present.') || o.name.startsWith('tempo_prefix.')).map((o) => o.name)
    const rt = ModelRuntime.for(ort, src.decoder, backend, {
      executionProviders,
      key: resident ? 'resident' : 'roundtrip',
      ...(resident && backend === 'webgpu' && { preferredOutputLocation: Object.fromEntries(present.map((n) => [n, 'gpu-buffer' as const])) }),
    })
    this.runtimes.add(rt)
    return rt
  }

  /** The gather graph for this model's carried K/V, or (`tempo`) the concat variant over the
   * TempoFit bank's memory layers; `concat` asks for the concat variant over the carried layers
   * (a KIVI mirror's uploads). */
  private gatherFor(m: ModelManifest, tempo = false, half = false, concat = tempo): ModelRuntime {
    const { ort, backend, executionProviders } = this.o.choice
    const shape = { layers: tempo ? m.tempoLayers.length : m.layers, kvHeads: m.kvHeads, headDim: m.headDim, concat, half }
    const key = `gather${concat ? '+concat' : ''}${half ? '+half' : ''}:${shape.layers}x${shape.kvHeads}x${shape.headDim}`
    const manifest = { ...m, id: key, sha256: key, inputs: [], outputs: [] } as ModelManifest
    // the graph is built when the runtime first makes its session (not on every lookup)
    const rt = ModelRuntime.for(ort, { manifest, bytes: () => buildKvGather(shape) }, backend, {
      executionProviders,
      key,
      ...(backend === 'webgpu' && { preferredOutputLocation: Object.fromEntries(Array.from({ length: shape.layers }, (_, l) => [`kept.${l}.key`, `kept.${l}.value`]).flat().map((n) => [n, 'gpu-buffer' as const])) }),
    })
    this.runtimes.add(rt)
    return rt
  }

  private adapterFor(id: string): Adapter {
    const { manifest, src } = this.model(id)
    const { ort, backend, executionProviders } = this.o.choice
    let encoder: ModelRuntime | undefined
    if (src.encoder) {
      encoder = ModelRuntime.for(ort, src.encoder, backend, { executionProviders })
      this.runtimes.add(encoder)
    }
    return adapterFor(manifest, this.o.limits.maxPrefixTokens, encoder)
  }

  private residentFor(h: Hot): boolean {
    // float16 stays on the device only with float16Resident and a passing rounding check
    return this.o.resident && residentSupported(h.config.memoryDtype) && (h.config.memoryDtype !== 'float16' || this.float16Resident)
  }

  /** Whether float16 sessions stay on the device: asked for (`float16Resident`) and the backend's
   * rounding check (`prepare`) passed. */
  private get float16Resident(): boolean {
    return this.o.resident && !!this.o.float16Resident && !!this.half?.ok
  }

  /**
   * With `float16Resident`: checks once that the backend's half gather rounds as the codec does
   * (`checkHalfRounding`, on the device queue; its verdict in `settings.float16Check`). Called by
   * `startHost` before it serves and by `create`/`step` (a no-op once done).
   */
  async prepare(): Promise<void> {
    if (!(this.o.resident && this.o.float16Resident)) return
    this.halfCheck ??= halfSupport(this.o.choice).then((r) => {
      this.half = r
    })
    await this.halfCheck
  }

  private async run(h: Hot, request: StepRequest, forwarding?: Forwarding, overrides: Partial<EngineLimits> = {}, loadMs = 0) {
    const limits = { ...this.o.limits, maxPrefixTokens: Math.min(this.o.limits.maxPrefixTokens, overrides.maxPrefixTokens ?? Infinity) }
    const adapter = this.adapterFor(h.config.model)
    const restored = h.restored
    let memoryOut: SessionMemory | undefined
    let outcome
    let kvPath: 'resident' | 'roundtrip'
    let graph: 'captured' | 'fixed' | undefined
    if (this.residentFor(h)) {
      const runtime = this.runtimeFor(h.config.model, true)
      // a TempoFit bank keeps exactly its rows unless it is captured (fixed bank slots: captureTempo)
      const tempo = h.policy.memory === 'tempo'
      const { src } = this.model(h.config.model)
      // KIVI keeps a host mirror, which needs the dynamic layout (exactly the rows it holds)
      const kivi = h.config.memoryDtype === 'kivi'
      const captured = !kivi && this.o.capture && !!this.o.fixedCapacity && (tempo ? !!this.o.captureTempo && staticTempoSupported(src.decoder.manifest) : staticSupported(src.decoder.manifest))
      const capacity = kivi || (tempo && !captured) ? undefined : this.o.fixedCapacity || undefined
      // float16 storage: the gathers round every kept row (what a reload gives) and check overflow;
      // a memory uploaded from the host is rounded (and checked) first, whatever blob it came from
      const half = h.config.memoryDtype === 'float16'
      // KIVI: the device holds what a reload gives, and the host a mirror of it (`ResidentMemory.mirror`)
      let current = h.resident
      if (!current) {
        const upload = half || kivi ? roundTrip(h.memory!, storageOf(h.config)) : h.memory!
        current = residentFrom(upload, runtime, capacity, this.o.limits.maxMemoryTokens)
        if (kivi) current.mirror = { memory: upload, storage: storageOf(h.config) }
      }
      current.half = half
      h.resident = current
      h.memory = undefined
      let r
      if (tempo && !captured) r = await residentTempoStep(runtime, this.gatherFor(runtime.manifest, true, half), current, h.policy, request, limits, adapter)
      else if (captured) {
        const { ort, backend, executionProviders } = this.o.choice
        const ctx = { ort, backend, executionProviders, source: src.decoder }
        try {
          r = tempo
            ? await residentStaticTempoStep(ctx, this.gatherFor(runtime.manifest, true, half), current, h.policy, request, limits, adapter)
            : await residentStaticStep(ctx, this.gatherFor(runtime.manifest, false, half), current, h.policy, request, limits, adapter)
        } catch (e) {
          // K/V partly rewritten in place: drop the session; its next step reloads the durable copy
          if (current.invalid) await this.evictInvalid(h)
          throw e
        }
        graph = backend === 'webgpu' ? 'captured' : 'fixed'
      } else r = await residentStep(runtime, this.gatherFor(runtime.manifest, false, half), current, h.policy, request, limits, adapter, kivi ? this.gatherFor(runtime.manifest, false, false, true) : undefined)
      h.resident = r.resident // carries `half` (the step outcomes keep it)
      outcome = r.outcome
      kvPath = 'resident'
    } else {
      const runtime = this.runtimeFor(h.config.model, false)
      outcome = await runStep(runtime, h.memory!, h.policy, request, limits, adapter)
      memoryOut = roundTrip(outcome.memory, storageOf(h.config), h.memory!)
      h.memory = memoryOut
      kvPath = 'roundtrip'
    }
    h.seq = request.seq
    h.restored = undefined
    if (forwarding) h.tag = forwarding.next
    let durable: HostStepReply['durable']
    const t0 = performance.now()
    if (h.seq - h.durableSeq >= this.o.durableEvery) durable = { seq: h.seq, memory: await this.writeDurable(h) }
    const persistMs = performance.now() - t0
    const m = outcome.memory
    const s = summary(m)
    const logits = outcome.logits
    const kvBytes = m.layers.length * 2 * m.kvHeads * m.tokens * m.headDim * 4
    const reply: Record<string, unknown> = {
      seq: request.seq,
      action: outcome.action,
      memory: { tokensPerLayer: s.tokensPerLayer, bytes: durable?.memory.byteLength ?? kvBytes, nextPosition: s.nextPosition, durableSeq: h.durableSeq },
      timings: { ...outcome.timings, loadMs, persistMs },
      backend: this.backend,
      kvPath,
      ...(graph && { graph }),
      durableSeq: h.durableSeq,
      ...(restored && { restored }),
      ...(logits && { logits: { dtype: 'float32', dims: logits.dims, data: new Uint8Array(logits.data.buffer, logits.data.byteOffset, logits.data.byteLength) } }),
    }
    return { reply, durable }
  }

  /** Encodes and stores the session's memory (`mem`, else its current one). @returns the blob */
  private async writeDurable(h: Hot, mem?: SessionMemory): Promise<Uint8Array> {
    const memory = mem ?? h.memory ?? (await materialize(h.resident!))
    const blob = encodeMemory(memory, { policy: h.config.policy, ...storageOf(h.config) })
    await this.o.store.put(h.id, { config: h.config, seq: h.seq, memorySeq: memory.seq, tag: h.tag, memory: blob })
    h.durableSeq = memory.seq
    return blob
  }

  private async flush(h: Hot): Promise<void> {
    if (this.hot.get(h.id) === h) await this.persistLeaving(h)
  }

  /** What a session leaving memory (eviction, shutdown) writes: its durable copy when behind, and
   * its last reply when it is of the current step. */
  private async persistLeaving(h: Hot): Promise<void> {
    if (h.durableSeq < h.seq) await this.writeDurable(h)
    if (h.lastReply?.seq === h.seq) await this.o.store.putReply(h.id, h.seq, h.lastReply.packed)
  }

  /** Whether the store holds a record for `id`, readable or not (an unreadable one exists: it must
   * be deleted before the id is created again, and can be deleted without being read). */
  private async stored(id: string): Promise<boolean> {
    try {
      return (await this.o.store.get(id)) != null
    } catch (e) {
      if (e instanceof CorruptRecordError) return true
      throw e
    }
  }

  /** The hot session, else restored from the durable store (and admitted). @throws NotFoundError */
  private async load(id: string): Promise<Hot> {
    const h = this.hot.get(id)
    if (h) {
      this.hot.delete(id)
      this.hot.set(id, h) // most recently used last
      return h
    }
    // a stored copy that cannot be read is the host's fault (500), never decoded past the error;
    // the caller can seed it again or delete the session (`close` does not read it)
    const corrupt = (why: string) =>
      new StepkvError('stored_memory_corrupt', 500, `the GPU host's durable copy of this session cannot be read (${why}); seed it again (PUT /v1/sessions/${id}/state) or delete the session`)
    let rec: Awaited<ReturnType<DurableStore['get']>>
    try {
      rec = await this.o.store.get(id)
    } catch (e) {
      throw e instanceof CorruptRecordError ? corrupt(e.message) : e
    }
    if (!rec) throw new NotFoundError('unknown session', {}, 'unknown_session')
    const { manifest } = this.model(rec.config.model)
    let policy: Policy
    let memory: SessionMemory
    try {
      policy = policyFor(manifest, rec.config.policy.name, rec.config.policy.params)
      ;({ memory } = decodeMemory(rec.memory, expectedShape(manifest, rec.config), { trusted: true }))
    } catch (e) {
      throw corrupt(String((e as Error)?.message ?? e))
    }
    const restored = rec.memorySeq < rec.seq ? { fromSeq: rec.memorySeq, lostSteps: rec.seq - rec.memorySeq } : undefined
    const fresh: Hot = { id, config: rec.config, policy, seq: rec.seq, tag: rec.tag, durableSeq: rec.memorySeq, memory, ...(restored && { restored }) }
    // the last step's reply, kept when the session left memory: a retry of that step gets it back
    const kept = await this.o.store.getReply(id).catch(() => null)
    if (kept && kept.seq === rec.seq && rec.seq > 0 && readable(kept.reply)) fresh.lastReply = { seq: kept.seq, packed: kept.reply }
    this.admit(fresh)
    return fresh
  }

  /** Holds `h`; evicts the least recently used sessions past `maxHot` (durable copy first). */
  private admit(h: Hot): void {
    this.hot.set(h.id, h)
    for (const [id, old] of this.hot) {
      if (this.hot.size <= this.o.maxHot) break
      if (id === h.id || this.locks.has(id)) continue // a session mid-step stays
      this.hot.delete(id)
      // The evicted session's own queue writes its copy before its next step can reload it.
      void this.exclusive(id, async () => {
        try {
          await this.persistLeaving(old)
        } finally {
          disposeResident(old.resident)
        }
      }).catch((e) => console.error(JSON.stringify({ level: 'error', event: 'evict', session: id, error: String(e) })))
    }
  }

  /** Drops a session whose device memory no longer matches its metadata; the steps after its
   * durable copy are recorded as lost (its next reply says `restored`). */
  private async evictInvalid(h: Hot): Promise<void> {
    if (h.durableSeq < h.seq) {
      const rec = await this.o.store.get(h.id)
      if (rec) await this.o.store.put(h.id, { ...rec, seq: h.seq, tag: h.tag })
    }
    await this.drop(h.id)
  }

  private async drop(id: string): Promise<void> {
    const h = this.hot.get(id)
    this.hot.delete(id)
    disposeResident(h?.resident)
  }

  /** After a lost device: new ORT sessions; every held session is restored from its durable copy
   * on its next step. A session whose memory is on the host (round trip, or a KIVI mirror) writes
   * its durable copy first and loses nothing; one whose K/V were only on the device loses the steps
   * after its durable copy (its device buffers are gone). */
  private async recover(): Promise<void> {
    this.recoveries++
    for (const rt of this.runtimes) await rt.reset()
    resetCaptureHelpers(this.o.choice.ort)
    const held = [...this.hot.values()]
    // their captured graphs go with the device (released where the runtime still can)
    for (const h of held) h.resident?.bound?.release()
    // Device tensors are invalid now: forget them (dispose would touch the lost device).
    this.hot.clear()
    for (const h of held) {
      if (h.durableSeq >= h.seq) continue
      if (h.memory || h.resident?.mirror) {
        await this.writeDurable(h) // host memory survives the device
        continue
      }
      // Steps after the durable copy are gone: record how far the session had run, so its
      // restore declares them (`restored` in the next reply).
      const rec = await this.o.store.get(h.id)
      if (rec) await this.o.store.put(h.id, { ...rec, seq: h.seq, tag: h.tag })
    }
  }

  private describe(h: Hot): Record<string, unknown> {
    const m = h.memory ?? h.resident!.meta
    const s = summary(m)
    return {
      id: h.id,
      model: h.config.model,
      policy: h.config.policy,
      memoryDtype: h.config.memoryDtype,
      seq: h.seq,
      durableSeq: h.durableSeq,
      backend: this.backend,
      kvPath: this.residentFor(h) ? 'resident' : 'roundtrip', // the path its steps take (the memory moves to the device at the first step)
      memory: { tokensPerLayer: s.tokensPerLayer, nextPosition: s.nextPosition, durableSeq: h.durableSeq },
    }
  }

  /** Runs `fn` after every earlier call on session `id` finished. */
  private exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.locks.get(id) ?? Promise.resolve()).then(fn)
    const tail = run.catch(() => undefined)
    this.locks.set(id, tail)
    void tail.then(() => this.locks.get(id) === tail && this.locks.delete(id))
    return run
  }
}
