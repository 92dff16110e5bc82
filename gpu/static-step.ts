/**
 * @module The GPU host's captured step: the fixed-capacity float-table variant of a decoder (built in
 * code from the model's own weights, `models/decoder/read-weights.ts` + `buildDecoderOnnx` with
 * `fixed`) run with ORT's WebGPU graph capture. Every input and output is a GPU buffer bound once per
 * (session, prefix length S, capacity C): the first run records the step's ≈ 240–720 dispatches, each
 * later run replays them with no per-kernel CPU work (the resident path pays ORT's JS path per kernel:
 * `bench/results/gpu-bench.json` host-step rows, `bench/results/gpu-hostcap.json` the host's layouts).
 * The first step of each (session, prefix bucket) builds and records its graph: ≈ 2 s for the
 * 4 × 128 models and ≈ 6 s for the 12 × 768 decoder on the H200, tens of ms on wasm. Prefixes are
 * therefore padded up to a multiple of `PREFIX_BUCKET` (16) tokens with masked rows (`staticTables`:
 * no real row attends them and they attend only each other, so they add nothing to `attn_total`'s
 * real columns; their outputs are dropped), so GUI prompts whose instruction length varies share
 * graphs. The graph has only the optional per-layer outputs the policy reads. Per step the host
 * writes the new embeddings and the tables (`staticTables`: RoPE cos/sin, the attention bias that
 * masks empty slots and enforces causality, the observation-window weights) into the bound inputs,
 * replays, reads back only what the policy needs (logits, and the per-layer `attn_*` /
 * `hidden_norm` / keys its scoring reads) through one staging buffer, and a second captured graph,
 * the slot gather (`buildSlotGather`), writes the kept rows of `present` straight into the bound
 * past slots, so the next replay reads them.
 *
 * On wasm the same code runs the same graphs without capture (host tensors, no binding): what CI
 * tests against the Worker's engine. Carried-KV policies on models without TempoFit ports
 * (`residentStaticStep`), and TempoFit banks in fixed slots (`residentStaticTempoStep`: the fixed
 * TempoFit graph with the bank as bound inputs, the slot gather's concat variant).
 *
 * What capture needs beyond the bound buffers (each found on the H200): no Identity node (no WebGPU
 * kernel: the session is refused), no buffer copy into a bound output (a Reshape there is a GPU copy
 * that replays skip: the fixed graph writes the head bias as a Sub, which ORT does not fuse into
 * Reshape → Gemm → Reshape; the slot gather has no Reshape either), every run of the process on one
 * queue with an uncaptured run before the next uncaptured run after a replay (`clearCapture`,
 * `onDevice`), and ORT's pending buffer releases flushed before a replay whenever anything may have
 * released a device buffer since the last flush (`takeDeviceReleases`, `ortFlush`).
 *
 * Two ORT sessions (the step graph and its slot gather) per (hot session, prefix bucket): graph
 * capture records buffer identities, so a recorded graph serves one session's buffers. A session holds at most `MAX_RUNNERS` prefix buckets (least recently
 * used released past that); each holds the model's weights on the device once more (3.3 MB for the
 * trained 4 × 128 models).
 */
import type { InferenceSession, Tensor } from 'onnxruntime-web'
import type { Adapter } from '../agents/adapter.ts'
import { buildDecoderOnnx } from '../models/decoder/graph.ts'
import { KV_ABSMAX_OUTPUT, MASKED_SCORE, OPTIONAL_PORTS, type OptionalPort } from '../models/decoder/graph.ts'
import { readDecoderWeights } from '../models/decoder/read-weights.ts'
import type { DecoderConfig } from '../models/decoder/config.ts'
import type { DecoderWeights } from '../models/decoder/weights.ts'
import type { Policy, SessionMemory, StepInfo } from '../memory/types.ts'
import { encodeStepPrefix, stepPositions, stepWindow, type EngineLimits, type StepOutcome, type StepRequest } from '../worker/engine.ts'
import { realRows } from '../memory/session.ts'
import { tempoBiasFor } from '../memory/policies/tempofit.ts'
import type { ModelManifest } from './manifest.ts'
import {
  capacityFor,
  decodeChecked,
  disposeAll,
  gatherKept,
  identityRows,
  inFirstCopy,
  slotRows,
  residentOutcome,
  updateOnTags,
  updateTempoOnTags,
  type ResidentMemory,
} from './resident.ts'
import { noteDeviceReleases, onDevice, resetDeviceQueueState, takeDeviceReleases, type ModelRuntime, type ModelSource } from './session.ts'
import { buildSlotGather, checkHalfAbsMax, gatherNames, slotIds } from './kv-gather.ts'
import { GraphBuilder } from '../models/onnx/builder.ts'
import type { Ort } from './ort-node.ts'

/**
 * Where a captured step's time goes (ms per part, one sample per step; for `bench/gpu.ts`): off
 * unless `on` is set. Parts: `queue` waiting for the device queue, `write` the flush and the input
 * writes, `run` ORT's replay call, `read` the read-back of the outputs the policy reads (GPU work
 * included), `gatherRun` the slot gather's replay call.
 */
export const captureProfile: {
  on: boolean
  samples: Record<string, number[]>
  /** Bench-only experiments (`bench/gpu.ts time --capture-variant`), never set by the host:
   * `skipFlush` leaves out the pre-replay flush (ORT's pending releases then leak into the
   * replay's keep-list), `skipWrites` writes the inputs only at a runner's first step (later
   * steps replay on stale inputs: wrong results, the same work). */
  skipFlush?: boolean
  skipWrites?: boolean
} = { on: false, samples: {} }
const mark = (part: string, since: number): number => {
  const t = performance.now()
  if (captureProfile.on) (captureProfile.samples[part] ??= []).push(t - since)
  return t
}

/** Most prefix buckets (padded lengths) one session keeps a bound graph for. */
export const MAX_RUNNERS = 4

/** The float tables of one fixed-capacity step (all float32, row-major). */
export interface StaticTables {
  /** RoPE `[S, Dh]` each: cos / sin of position · inv_freq (angles in float64, as the contract's graph). */
  cos: Float32Array
  sin: Float32Array
  /** `[S, C + S]`: 0 where query i may attend (past slot j < P; new token k ≤ i), else MASKED_SCORE. */
  bias: Float32Array
  /** `[S]`: 1 on the last `window` queries, else 0. */
  window: Float32Array
}

/** Prefix lengths are padded up to a multiple of this (tokens): prompts of nearby lengths share one
 * bound graph instead of recording one each. */
export const PREFIX_BUCKET = 16

/** The padded prefix length of `S` tokens: the next multiple of `PREFIX_BUCKET`. */
export const bucketOf = (S: number): number => Math.ceil(S / PREFIX_BUCKET) * PREFIX_BUCKET

/**
 * The tables that replace `position_ids`, `attention_mask` and `obs_window` in the fixed-capacity
 * graph (`buildDecoderOnnx` with `fixed`), for S real new tokens padded to `rows` query rows.
 * Padding rows continue the positions and attend only each other (causally): no real row attends
 * them and they put no probability on a real column, `window` is 0 on them, and their outputs are
 * dropped. (An earlier variant let them attend the real rows and weighted them out of `attn_total`
 * with a `query_weight` MatMul; on the H200 that graph, captured, broke a dynamic-shape session
 * stepping beside it in the same process: `bench/gpu.ts captrace`, mixed.)
 * @param positions absolute positions of the S new tokens
 * @param P real past rows (slots 0 … P − 1 of each head; slots P … C − 1 are empty)
 * @param C past slots (capacity, tokens)
 * @param window observation window w (1 ≤ w ≤ S)
 * @param m `headDim` (even) and `ropeBase` of the model
 * @param rows query rows of the graph (≥ S; default S: no padding)
 * @throws RangeError when P > C, w is outside 1 … S, or rows < S
 */
export function staticTables(positions: ArrayLike<number>, P: number, C: number, window: number, m: { headDim: number; ropeBase: number }, rows = positions.length): StaticTables {
  const S = positions.length
  if (!(Number.isInteger(P) && Number.isInteger(C) && 0 <= P && P <= C)) throw new RangeError(`past rows ${P} must be within the capacity ${C}`)
  if (!(Number.isInteger(window) && window >= 1 && window <= S)) throw new RangeError(`observation window ${window} must be in 1…${S}`)
  if (!(Number.isInteger(rows) && rows >= S)) throw new RangeError(`query rows ${rows} must be an integer ≥ ${S}`)
  const Dh = m.headDim
  const half = Dh / 2
  const invFreq = Float64Array.from({ length: half }, (_, i) => m.ropeBase ** ((-2 * i) / Dh))
  const cos = new Float32Array(rows * Dh)
  const sin = new Float32Array(rows * Dh)
  for (let i = 0; i < rows; i++) {
    const position = i < S ? positions[i] : positions[S - 1] + (i - S + 1)
    for (let j = 0; j < half; j++) {
      const angle = position * invFreq[j]
      cos[i * Dh + j] = cos[i * Dh + half + j] = Math.cos(angle)
      sin[i * Dh + j] = sin[i * Dh + half + j] = Math.sin(angle)
    }
  }
  const T = C + rows
  const bias = new Float32Array(rows * T).fill(MASKED_SCORE)
  for (let i = 0; i < S; i++) {
    bias.fill(0, i * T, i * T + P)
    bias.fill(0, i * T + C, i * T + C + i + 1)
  }
  // a padding row attends only padding columns up to itself: its probabilities on every real
  // column are exactly 0 (exp of MASKED_SCORE − max underflows), so the per-column sums the graph
  // outputs (`attn_total`) keep the real columns' values
  for (let i = S; i < rows; i++) bias.fill(0, i * T + C + S, i * T + C + i + 1)
  const w = new Float32Array(rows)
  w.fill(1, S - window, S)
  return { cos, sin, bias, window: w }
}

/** The decoder config of a manifest (the architecture `buildDecoderOnnx` rebuilds). */
function configOf(m: ModelManifest): DecoderConfig {
  const { vocabSize, hiddenSize, layers, heads, kvHeads, headDim, intermediateSize, ropeBase, rmsNormEps, maxPosition } = m
  return { vocabSize, hiddenSize, layers, heads, kvHeads, headDim, intermediateSize, ropeBase, rmsNormEps, maxPosition, ...(m.ports.tempo && { tempoLayers: m.tempoLayers }) }
}

/** True when the host can serve `m`'s TempoFit bank with the captured step
 * (`residentStaticTempoStep`): a decoder with TempoFit ports at one or more layers. */
export function staticTempoSupported(m: ModelManifest): boolean {
  return !!m.ports.tempo && m.tempoLayers.length > 0
}

/** True when the host can serve `m` with the captured step: a decoder without TempoFit ports that
 * has `attn_window`, `attn_total` and `hidden_norm` (the graph rebuilds them all). */
export function staticSupported(m: ModelManifest): boolean {
  return !m.ports.tempo && m.ports.attnWindow && m.ports.attnTotal && m.ports.hiddenNorm
}

const weightCache = new Map<string, Promise<DecoderWeights>>()

/**
 * The fixed-capacity graph of `source`'s model for S new tokens against C slots, with the optional
 * per-layer `outputs` a policy reads (default all; fewer outputs: less work per step). A TempoFit
 * model's graph takes `bank` slots per memory layer and C = 0 (no carried K/V, no `present`).
 * `kvAbsMax` (a float16 memory) adds the scalar output `kv_absmax`: max |x| of the rows the step stores.
 * @returns .onnx bytes (weights read from the model file once per process, cached by sha256)
 * @throws Error when a weight cannot be found in the model file
 */
export async function staticGraph(source: ModelSource, S: number, C: number, outputs: readonly OptionalPort[] = OPTIONAL_PORTS, bank?: number, kvAbsMax = false): Promise<Uint8Array> {
  const m = source.manifest
  let w = weightCache.get(m.sha256)
  if (!w) {
    weightCache.set(m.sha256, (w = (async () => readDecoderWeights(await source.bytes(), configOf(m)))()))
    w.catch(() => weightCache.delete(m.sha256))
  }
  return buildDecoderOnnx(configOf(m), await w, { input: m.ports.inputsEmbeds ? 'embeds' : 'ids', fixed: { seq: S, capacity: C, outputs, ...(bank !== undefined && { bank }), kvAbsMax } })
}

type GpuBuffer = { size: number; destroy(): void; mapAsync(mode: number): Promise<void>; getMappedRange(): ArrayBuffer; unmap(): void }
type GpuDevice = {
  createBuffer(d: { size: number; usage: number }): GpuBuffer
  createCommandEncoder(): { copyBufferToBuffer(a: GpuBuffer, ao: number, b: GpuBuffer, bo: number, n: number): void; finish(): unknown }
  queue: { writeBuffer(b: GpuBuffer, offset: number, data: ArrayBufferView): void; submit(c: unknown[]): void }
}

/** ORT's WebGPU device (created with the first WebGPU session). @throws Error when there is none */
async function webgpuDevice(ort: Ort): Promise<GpuDevice> {
  const device = (await (ort.env as unknown as { webgpu?: { device?: GpuDevice | Promise<GpuDevice> } }).webgpu?.device) as GpuDevice | undefined
  if (!device) throw new Error('no WebGPU device on ort.env.webgpu')
  return device
}

/** What the host passes to a captured step: ORT build, backend and the model. */
export interface StaticContext {
  ort: Ort
  backend: 'webgpu' | 'wasm'
  executionProviders: string[]
  source: ModelSource
}

/** One bound graph: an ORT session for (S, C); on WebGPU its inputs and outputs are GPU buffers. */
interface Runner {
  S: number
  C: number
  /** the optional per-layer outputs the graph has (`OptionalPort`s, comma-joined) */
  ports: string
  /** a TempoFit graph's bank slots per memory layer (then C = 0 and the slots are the bank) */
  bank?: number
  /** a float16 memory's graphs: `kv_absmax` out of the step graph, the slot gather rounds to float16 */
  half: boolean
  session: InferenceSession
  /** WebGPU: bound tensors (inputs without the past, and every output) and their buffers. */
  inputs?: Record<string, Tensor>
  outputs?: Record<string, Tensor>
  buffers?: Record<string, GpuBuffer>
  /** WebGPU: the past slots bound at the first run (the session's `kv`). */
  slots?: Tensor[]
  staging?: GpuBuffer
  /** The slot gather from `present` into the slots (made at this graph's first gather). */
  gather?: Promise<SlotGather>
}

/** A runner's slot gather (`buildSlotGather`: C + S rows per head in, C out; a TempoFit runner's:
 * its bank slots with the S `tempo_prefix` rows appended in, the bank slots out). On WebGPU it is
 * captured: its inputs are the runner's bound `present` (or bank and `tempo_prefix`) buffers and one
 * int64 row-id buffer per layer (`rows`, `feeds`), its preallocated outputs the session's slots
 * (`fetches`); on wasm an uncaptured session on host tensors. */
interface SlotGather {
  session: InferenceSession
  rows?: GpuBuffer[]
  feeds?: Record<string, Tensor>
  fetches?: Record<string, Tensor>
}

/** A session's bound graphs, by prefix length S (all for its current capacity). */
export class StaticRunners {
  readonly runners = new Map<number, Runner>()

  /** Releases every graph and buffer. */
  release(): void {
    for (const r of this.runners.values()) releaseRunner(r)
    this.runners.clear()
  }
}

/** Releases a runner's ORT sessions, then its buffers, on the device queue (never mid-run); a slot
 * gather still being made is waited for first (outside the queue, which its creation needs). */
function releaseRunner(r: Runner): void {
  void (async () => {
    const g = await r.gather?.catch(() => undefined)
    await onDevice(async () => {
      await r.session.release().catch(() => undefined)
      await g?.session.release().catch(() => undefined)
      for (const b of [...Object.values(r.buffers ?? {}), ...(g?.rows ?? [])]) b.destroy()
      r.staging?.destroy()
    })
  })().catch((e) => console.error(JSON.stringify({ level: 'error', event: 'release-runner', error: String(e) })))
}

/** Input dtypes and dims of the fixed graph for (S query rows, C slots; a TempoFit graph: `bank`
 * slots), the past and the bank excepted. */
function inputDims(m: ModelManifest, S: number, C: number, bank?: number): Record<string, ['float32' | 'int64', number[]]> {
  return {
    ...(m.ports.inputsEmbeds ? { inputs_embeds: ['float32', [1, S, m.hiddenSize]] } : { input_ids: ['int64', [1, S]] }),
    rope_cos: ['float32', [1, 1, S, m.headDim]],
    rope_sin: ['float32', [1, 1, S, m.headDim]],
    attention_bias: ['float32', [1, 1, S, C + S]],
    window_weight: ['float32', [1, 1, 1, S]],
    ...(bank !== undefined && { tempo_bias: ['float32', [1, m.kvHeads, 1, bank]] as ['float32', number[]] }),
  }
}

/** The graph inputs the slots feed (past K/V; a TempoFit graph: its bank) and the outputs the slot
 * gather reads (present; a TempoFit graph: tempo_prefix), key then value per stored layer. */
function slotPorts(m: ModelManifest, tempo: boolean): { inputs: string[]; outputs: string[] } {
  const layers = tempo ? m.tempoLayers : Array.from({ length: m.layers }, (_, l) => l)
  const pair = (f: (l: number, p: string) => string) => layers.flatMap((l) => ['key', 'value'].map((p) => f(l, p)))
  return tempo
    ? { inputs: pair((l, p) => `tempo.${l}.${p}`), outputs: pair((l, p) => `tempo_prefix.${l}.${p}`) }
    : { inputs: pair((l, p) => `past_key_values.${l}.${p}`), outputs: pair((l, p) => `present.${l}.${p}`) }
}

/** Output dims of the fixed graph for (S, C). */
function outputDims(m: ModelManifest, name: string, S: number, C: number): number[] {
  const T = C + S
  if (name === 'logits') return [1, S, m.vocabSize]
  if (name.startsWith('present.')) return [1, m.kvHeads, T, m.headDim]
  if (name.startsWith('tempo_prefix.')) return [1, m.kvHeads, S, m.headDim]
  if (name.startsWith('attn_')) return [1, m.kvHeads, T]
  if (name.startsWith('hidden_norm.')) return [1, S]
  if (name === KV_ABSMAX_OUTPUT) return []
  throw new Error(`unexpected output '${name}' of the fixed-capacity graph`)
}

/** The runner for (S, memory's capacity), created and bound when missing. */
async function runnerFor(ctx: StaticContext, bound: StaticRunners, S: number, C: number, slots: Tensor[], ports: readonly OptionalPort[], half: boolean, bank?: number): Promise<Runner> {
  let r = bound.runners.get(S)
  if (r && (r.C !== C || r.bank !== bank || r.half !== half || r.ports !== ports.join() || (r.slots && r.slots.some((t, i) => t !== slots[i])))) {
    releaseRunner(r) // bound to other slots: rebuilt
    bound.runners.delete(S)
    r = undefined
  }
  if (r) {
    bound.runners.delete(S)
    bound.runners.set(S, r) // most recently used last
    return r
  }
  const capture = ctx.backend === 'webgpu'
  const bytes = await staticGraph(ctx.source, S, C, ports, bank, half)
  const session = await onDevice(() =>
    ctx.ort.InferenceSession.create(bytes, {
      executionProviders: ctx.executionProviders,
      graphOptimizationLevel: 'all',
      ...(capture && { enableGraphCapture: true }),
    } as InferenceSession.SessionOptions),
  )
  r = { S, C, ports: ports.join(), half, ...(bank !== undefined && { bank }), session }
  // what is made from here on is released if a later part fails
  try {
    if (capture) await bindBuffers(ctx, r, slots)
  } catch (e) {
    releaseRunner(r)
    throw e
  }
  bound.runners.set(S, r)
  for (const [s, old] of bound.runners) {
    if (bound.runners.size <= MAX_RUNNERS) break
    releaseRunner(old)
    bound.runners.delete(s)
  }
  return r
}

/** WebGPU: a GPU buffer (and ORT tensor) for every input but the past and for every output of `r`'s
 * graph, and the past slots it binds. */
async function bindBuffers(ctx: StaticContext, r: Runner, slots: Tensor[]): Promise<void> {
  const m = ctx.source.manifest
  const { S, C, session } = r
  const device = await webgpuDevice(ctx.ort)
  const U = (globalThis as unknown as { GPUBufferUsage: Record<string, number> }).GPUBufferUsage
  const buffer = (bytes: number) => device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: U.STORAGE | U.COPY_SRC | U.COPY_DST })
  r.buffers = {}
  r.inputs = {}
  r.outputs = {}
  for (const [name, [type, dims]] of Object.entries(inputDims(m, S, C, r.bank))) {
    if (!session.inputNames.includes(name)) continue // window_weight goes with attn_window
    const b = (r.buffers[name] = buffer(dims.reduce((a, x) => a * x, 1) * (type === 'int64' ? 8 : 4)))
    r.inputs[name] = ctx.ort.Tensor.fromGpuBuffer(b as never, { dataType: type, dims })
  }
  for (const name of session.outputNames) {
    const dims = outputDims(m, name, S, C)
    const b = (r.buffers[name] = buffer(dims.reduce((a, x) => a * x, 1) * 4))
    r.outputs[name] = ctx.ort.Tensor.fromGpuBuffer(b as never, { dataType: 'float32', dims })
  }
  r.slots = [...slots]
}

/** The slot gather of runner `r`: on WebGPU captured and bound (its past slots as outputs). What was
 * made is released if a later part fails. */
async function makeSlotGather(ctx: StaticContext, r: Runner): Promise<SlotGather> {
  const m = ctx.source.manifest
  const { S, C } = r
  const capture = ctx.backend === 'webgpu'
  const tempo = r.bank !== undefined
  const ports = slotPorts(m, tempo)
  const layers = ports.inputs.length / 2
  // carried K/V: C + S present rows in, C slots out; a TempoFit bank: its slots with the S new rows
  // appended in, the slots out
  const shape = tempo ? { total: r.bank! + S, capacity: r.bank!, added: S } : { total: C + S, capacity: C }
  const bytes = buildSlotGather({ layers, kvHeads: m.kvHeads, headDim: m.headDim, ...shape, half: r.half })
  const session = await onDevice(() =>
    ctx.ort.InferenceSession.create(bytes, { executionProviders: ctx.executionProviders, graphOptimizationLevel: 'all', ...(capture && { enableGraphCapture: true }) } as InferenceSession.SessionOptions),
  )
  if (!capture) return { session }
  const rows: GpuBuffer[] = []
  try {
    const device = await webgpuDevice(ctx.ort)
    const U = (globalThis as unknown as { GPUBufferUsage: Record<string, number> }).GPUBufferUsage
    const feeds: Record<string, Tensor> = {}
    const fetches: Record<string, Tensor> = {}
    for (let l = 0; l < layers; l++) {
      rows.push(device.createBuffer({ size: Math.ceil((m.kvHeads * shape.capacity * 8) / 16) * 16, usage: U.STORAGE | U.COPY_DST }))
      feeds[`rows.${l}`] = ctx.ort.Tensor.fromGpuBuffer(rows[l] as never, { dataType: 'int64', dims: [1, m.kvHeads, shape.capacity, 1] })
      for (const [j, part] of (['key', 'value'] as const).entries()) {
        const n = gatherNames(l, part)
        const step = r.outputs![ports.outputs[2 * l + j]]
        if (tempo) {
          feeds[n.input] = r.slots![2 * l + j] // the bank, read (concatenated) before the slots are written
          feeds[n.added] = step
        } else feeds[n.input] = step
        fetches[n.output] = r.slots![2 * l + j]
      }
    }
    if (tempo) {
      // ORT runs a graph-capture session twice on its first call (once plain, once capturing), and
      // JSEP dispatches both: a gather that reads the slots it writes would be applied twice. The
      // concat variant reads the bank slots, so it is captured here on identity rows (slot k ← bank
      // row k, the same values however often it runs); later calls replay once.
      const identity = new Int32Array(2 * m.kvHeads * shape.capacity)
      for (let i = 0; i < m.kvHeads * shape.capacity; i++) identity[2 * i] = i % shape.capacity
      await onDevice(async () => {
        await ortFlush(ctx)
        rows.forEach((b) => device.queue.writeBuffer(b, 0, bytesOf(identity)))
        await session.run(feeds, fetches)
      }, () => clearCapture(ctx))
    }
    return { session, rows, feeds, fetches }
  } catch (e) {
    void onDevice(() => session.release()).catch(() => undefined)
    rows.forEach((b) => b.destroy())
    throw e
  }
}

/**
 * Moves the kept rows of `present` (`from.kv`) into C slots per head with the runner's slot gather
 * (a TempoFit runner: of its bank `from.kv` with the step's `tempo_prefix` rows `from.added`
 * appended, into its bank slots). `rows`: per stored layer, `[Hkv·C]` flat ids into the
 * `[Hkv, C + S]` rows (`slotRows`). On WebGPU the captured gather writes them into the bound slots
 * (calling `writing` right before the replay: from then on a failure may leave the slots
 * half-written) and returns undefined; on wasm it returns new tensors `[1, Hkv, C, Dh]`, key then
 * value per layer.
 * @throws RangeError when a row id is outside its head (`slotIds`), before anything is written;
 *   Error when ORT refuses the graph or the run
 */
async function slotGather(ctx: StaticContext, r: Runner, rows: Int32Array[], from: { kv: Tensor[]; added?: Tensor[] }, writing: () => void): Promise<Tensor[] | undefined> {
  const m = ctx.source.manifest
  const slots = r.bank ?? r.C
  const ids = rows.map((x) => slotIds(x, m.kvHeads, slots + r.S))
  const made = (r.gather ??= makeSlotGather(ctx, r))
  made.catch(() => {
    if (r.gather === made) r.gather = undefined // the next gather tries again
  })
  const g = await made
  if (!g.rows) {
    // wasm: host tensors in, new tensors out
    const feeds: Record<string, Tensor> = {}
    const fetches: string[] = []
    ids.forEach((x, l) => {
      feeds[`rows.${l}`] = new ctx.ort.Tensor('int64', new BigInt64Array(x.buffer, x.byteOffset, x.length / 2), [1, m.kvHeads, slots, 1])
      for (const [j, part] of (['key', 'value'] as const).entries()) {
        feeds[gatherNames(l, part).input] = from.kv[2 * l + j]
        if (from.added) feeds[gatherNames(l, part).added] = from.added[2 * l + j]
        fetches.push(gatherNames(l, part).output)
      }
    })
    const out = await onDevice(() => g.session.run(feeds, fetches))
    return fetches.map((n) => out[n])
  }
  const device = await webgpuDevice(ctx.ort)
  await onDevice(async () => {
    await flushReleases(ctx)
    writing()
    ids.forEach((x, l) => device.queue.writeBuffer(g.rows![l], 0, bytesOf(x)))
    const t = performance.now()
    await g.session.run(g.feeds!, g.fetches!)
    mark('gatherRun', t)
  }, () => clearCapture(ctx))
  return undefined
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)

/**
 * A one-node session (Identity on the CPU EP) run before the first uncaptured run that follows a
 * captured one (`onDevice`'s `clear`). ORT's JSEP checks a run's bound buffers against the session
 * that ran *last* (`registerExternalBuffer`: a buffer other than the one an input index had before
 * is refused while the current session has a captured graph), and it registers before switching to
 * the new run's session: after a captured replay, the next run of any other session that feeds new
 * device tensors (the dynamic gather when the capacity grows, another session's dynamic path) would
 * be refused. Running this session makes an uncaptured one current again (measured on the H200: the
 * first uncaptured gather after a replay failed without it). Captured runs in a row need none: each
 * binds the buffers it bound before.
 */
const clearers = new WeakMap<object, Promise<InferenceSession>>()

/** Forgets the flush and clear sessions made on `ort` (after a lost device: the next captured step
 * makes new ones on the new device). */
export function resetCaptureHelpers(ort: Ort): void {
  clearers.delete(ort)
  flushers.delete(ort)
  resetDeviceQueueState()
}

/** ORT's flush helper per ORT module (`ortFlush`). */
const flushers = new WeakMap<object, Promise<() => Promise<unknown>>>()

/** `ortFlush` when something may have released a device buffer since the last flush
 * (`takeDeviceReleases`); a flush that fails leaves the mark set. */
async function flushReleases(ctx: StaticContext): Promise<void> {
  if (!takeDeviceReleases()) return
  try {
    await ortFlush(ctx)
  } catch (e) {
    noteDeviceReleases()
    throw e
  }
}

/**
 * ORT's JSEP frees released buffers at its next command flush, into the free list when no captured
 * graph is running, else into that captured session's keep-list (`refreshPendingBuffers`): buffers
 * other sessions released since the last flush (the encoder's outputs, the gather's row uploads)
 * would be kept by the replay until the captured session is released — 2 buffers per step on the
 * H200 (`growth`). Downloading a 1-element tensor ORT made flushes first, so the replay finds nothing
 * pending. ORT's downloader flushes before its first `await` (`downloadGpuData`), so the read-back
 * itself is not waited for: one GPU round trip less per replay. @returns once the flush is issued
 */
async function ortFlush(ctx: StaticContext): Promise<void> {
  let f = flushers.get(ctx.ort)
  if (!f) {
    const g = new GraphBuilder('stepkv_flush')
    g.outputDirect('y', 'float32', [1], g.op('Neg', [g.input('x', 'float32', [1])]))
    f = (async () => {
      const session = await ctx.ort.InferenceSession.create(g.toBytes(), { executionProviders: ctx.executionProviders, preferredOutputLocation: { y: 'gpu-buffer' } } as InferenceSession.SessionOptions)
      const out = await session.run({ x: new ctx.ort.Tensor('float32', new Float32Array(1), [1]) })
      const download = (out.y as unknown as { downloader?: () => Promise<unknown> }).downloader
      if (typeof download !== 'function') throw new Error('onnxruntime-web: a device tensor has no downloader (the pinned 1.30 internals changed)')
      return download
    })()
    flushers.set(ctx.ort, f)
    f.catch(() => flushers.delete(ctx.ort))
  }
  const download = await f
  download().catch(() => undefined) // a lost device shows in the run that follows
}
function clearCapture(ctx: StaticContext): Promise<void> {
  let s = clearers.get(ctx.ort)
  if (!s) {
    const g = new GraphBuilder('stepkv_clear_capture')
    g.output('y', 'float32', [1], g.input('x', 'float32', [1]))
    clearers.set(ctx.ort, (s = ctx.ort.InferenceSession.create(g.toBytes(), { executionProviders: ctx.executionProviders } as InferenceSession.SessionOptions)))
    s.catch(() => clearers.delete(ctx.ort))
  }
  return s.then(async (session) => {
    const out = await session.run({ x: new ctx.ort.Tensor('float32', new Float32Array(1), [1]) })
    out.y.dispose()
  })
}

/**
 * Runs the bound graph and reads back `read` outputs (host copies), plus the tensors the slot gather
 * reads (`present`; a TempoFit graph: `tempo_prefix`; on WebGPU the bound buffers themselves, on
 * wasm ORT's host tensors, which `release` disposes). `past`: the slots (past K/V, or the bank);
 * `tempoBias`: a TempoFit graph's `[Hkv, bank]` bias.
 */
async function runBound(ctx: StaticContext, r: Runner, prefix: { inputsEmbeds?: Float32Array; inputIds?: ArrayLike<number> }, t: StaticTables, past: Tensor[], read: string[], tempoBias?: Float32Array) {
  const m = ctx.source.manifest
  const { S, C } = r
  const ort = ctx.ort
  const ports = slotPorts(m, r.bank !== undefined)
  const pastFeeds: Record<string, Tensor> = Object.fromEntries(ports.inputs.map((n, i) => [n, past[i]]))
  const present = ports.outputs
  // the prefix padded to the graph's S rows (zeros: their outputs are dropped)
  let embeds: Float32Array | undefined
  let ids: BigInt64Array | undefined
  if (prefix.inputsEmbeds) {
    embeds = prefix.inputsEmbeds.length === S * m.hiddenSize ? prefix.inputsEmbeds : new Float32Array(S * m.hiddenSize)
    if (embeds !== prefix.inputsEmbeds) embeds.set(prefix.inputsEmbeds)
  } else {
    ids = new BigInt64Array(S)
    Array.from(prefix.inputIds!, BigInt).forEach((x, i) => (ids![i] = x))
  }
  const values: Record<string, Float32Array | BigInt64Array> = {
    ...(embeds ? { inputs_embeds: embeds } : { input_ids: ids! }),
    rope_cos: t.cos,
    rope_sin: t.sin,
    attention_bias: t.bias,
    window_weight: t.window,
    ...(tempoBias && { tempo_bias: tempoBias }),
  }
  if (!r.inputs) {
    // wasm: host tensors, ORT allocates the outputs
    const dims = inputDims(m, S, C, r.bank)
    const feeds: Record<string, Tensor> = { ...pastFeeds }
    for (const [n, v] of Object.entries(values)) if (r.session.inputNames.includes(n)) feeds[n] = new ort.Tensor(dims[n][0], v as Float32Array, dims[n][1])
    const out = await onDevice(() => r.session.run(feeds, [...new Set([...read, ...present])]))
    return {
      host: Object.fromEntries(read.map((n) => [n, out[n].data as Float32Array])),
      present: present.map((n) => out[n]),
      release: () => Object.values(out).forEach((x) => x.dispose()),
    }
  }
  const device = await webgpuDevice(ort)
  let clock = performance.now()
  const host = await onDevice(async () => {
    clock = mark('queue', clock)
    if (!captureProfile.skipFlush) await flushReleases(ctx)
    if (!(captureProfile.skipWrites && r.staging)) for (const [n, v] of Object.entries(values)) if (r.inputs![n]) device.queue.writeBuffer(r.buffers![n], 0, bytesOf(v))
    clock = mark('write', clock)
    await r.session.run({ ...r.inputs!, ...pastFeeds }, r.outputs!)
    clock = mark('run', clock)
    // one copy of every output read into one staging buffer, one map (a replay has flushed its work)
    const sizes = read.map((n) => (r.outputs![n].dims as number[]).reduce((a, x) => a * x, 1) * 4)
    const total = sizes.reduce((a, x) => a + x, 0)
    if (!r.staging || r.staging.size < total) {
      r.staging?.destroy()
      const U = (globalThis as unknown as { GPUBufferUsage: Record<string, number> }).GPUBufferUsage
      r.staging = device.createBuffer({ size: Math.ceil(total / 16) * 16, usage: U.MAP_READ | U.COPY_DST })
    }
    const enc = device.createCommandEncoder()
    let offset = 0
    read.forEach((n, i) => {
      enc.copyBufferToBuffer(r.buffers![n], 0, r.staging!, offset, sizes[i])
      offset += sizes[i]
    })
    device.queue.submit([enc.finish()])
    await r.staging.mapAsync((globalThis as unknown as { GPUMapMode: Record<string, number> }).GPUMapMode.READ)
    const bytes = r.staging.getMappedRange().slice(0, total)
    r.staging.unmap()
    mark('read', clock)
    offset = 0
    return Object.fromEntries(read.map((n, i) => [n, new Float32Array(bytes, (offset += sizes[i]) - sizes[i], sizes[i] / 4)]))
  }, () => clearCapture(ctx))
  return { host, present: present.map((n) => r.outputs![n]), release: () => undefined }
}

/**
 * One step of a carried-KV policy on the fixed-capacity float-table graph (captured on WebGPU): as
 * `residentStep` (`resident.ts`) with the same results, the K/V kept in the bound past slots.
 * `memory` must have a `capacity`; it is consumed (use the returned `resident`).
 * @param gather the runtime of `buildKvGather` for this model's geometry
 * @returns the outcome (its `memory` holds metadata only) and the new resident memory
 * @throws as `runStep`: BadRequestError, StepkvError `too_many_tokens` (413) / `memory_limit`
 *   (422), NumericError for non-finite logits or, with `memory.half`, a new row that is NaN or
 *   overflows float16 — any new row, padding and rows the policy then drops included, a check
 *   stricter than the dynamic path's (the old memory stays valid then); Error when `memory` has no
 *   capacity
 */
export async function residentStaticStep(
  ctx: StaticContext,
  gather: ModelRuntime,
  memory: ResidentMemory,
  policy: Policy,
  request: StepRequest,
  limits: EngineLimits,
  adapter: Adapter,
): Promise<{ outcome: StepOutcome; resident: ResidentMemory }> {
  const m = ctx.source.manifest
  const C = memory.capacity
  if (C === undefined) throw new Error('the captured step needs a fixed-capacity memory')
  const now = () => performance.now()
  const t0 = now()
  const prefix = await encodeStepPrefix(adapter, request, limits)
  const S = prefix.tokens
  const mem = memory.meta
  const P = mem.tokens
  const positions = stepPositions(mem.nextPosition, S, m)
  const window = stepWindow(policy, request, S)
  const Sb = bucketOf(S) // the graph's query rows: S real, then padding
  const tables = staticTables(positions, P, C, window, m, Sb)
  // on WebGPU the past must be device buffers the graph can bind: an uploaded memory moves there
  // first (in place: the caller's memory stays valid if this step fails)
  if (ctx.backend === 'webgpu' && memory.kv.some((t) => t.location !== 'gpu-buffer'))
    memory.kv = await gatherKept(gather, mem.layers.map(() => identityRows(m.kvHeads, C)), memory.kv)
  const kv = memory.kv
  const bound = (memory.bound ??= new StaticRunners())
  const ports = { attnWindow: 'attn_window', attnTotal: 'attn_total', hiddenNorm: 'hidden_norm' } as const
  const small = (policy.requires ?? []).filter((r): r is keyof typeof ports => r in ports).map((r) => ports[r])
  // the graph has only the optional outputs this policy reads
  const half = !!memory.half
  const runner = await runnerFor(ctx, bound, Sb, C, kv, OPTIONAL_PORTS.filter((p) => small.includes(p)), half)
  const read = ['logits', ...small.flatMap((p) => Array.from({ length: m.layers }, (_, l) => `${p}.${l}`)), ...(policy.readsKeys ? Array.from({ length: m.layers }, (_, l) => `present.${l}.key`) : []), ...(half ? [KV_ABSMAX_OUTPUT] : [])]
  const t1 = now()
  const out = await runBound(ctx, runner, prefix, tables, kv, read)
  const t2 = now()
  const logits = out.host.logits.subarray(0, S * m.vocabSize) // the real rows
  let action: ReturnType<Adapter['decode']>
  let next: SessionMemory
  let t3: number
  let kept: Tensor[]
  let capacity: number
  try {
    action = decodeChecked(logits, adapter, m.vocabSize)
    if (half) checkHalfAbsMax(out.host[KV_ABSMAX_OUTPUT][0]) // before anything is written: the old memory stays
    t3 = now()
    const realColumns = (a: Float32Array) => realRows(a, m.kvHeads, P, C, S, 1, Sb)
    const perLayer = (p: string) => (small.includes(p as never) ? Array.from({ length: m.layers }, (_, l) => (p === 'hidden_norm' ? out.host[`${p}.${l}`].subarray(0, S) : realColumns(out.host[`${p}.${l}`]))) : undefined)
    const info: StepInfo = { seq: request.seq, prefixTokens: S, kinds: prefix.kinds, attnWindow: perLayer('attn_window'), attnTotal: perLayer('attn_total'), hiddenNorm: perLayer('hidden_norm') }
    // tagged rows name themselves (resident.ts residentStep); keys come down only for a policy that reads them
    const realKeys = policy.readsKeys ? mem.layers.map((_, l) => realRows(out.host[`present.${l}.key`], m.kvHeads, P, C, S, m.headDim, Sb)) : undefined
    let width: number
    ;({ next, width } = updateOnTags(policy, mem, P + S, realKeys, { seq: request.seq, positions, kinds: prefix.kinds }, info, limits))
    const K = next.tokens
    capacity = capacityFor(C, K, limits.maxMemoryTokens)
    // tags t ≥ P are new rows, at C + t − P of `present`'s C + Sb rows per head (padding never kept)
    const rows = next.layers.map((l) => slotRows(l.values, m.kvHeads, K, P, C, Sb, capacity, width))
    kept = await keepRows(ctx, runner, memory, rows, { kv: out.present }, C, capacity, () => gatherKept(gather, rows, out.present, undefined, half))
  } finally {
    out.release()
  }
  return staticOutcome(ctx, memory, kv, kept, C, capacity, next, action, logits, request, [t0, t1, t2, t3])
}

/**
 * Where a captured step's kept rows go once the policy has named them (`rows`: `slotRows` ids): with
 * the capacity unchanged (`slots`), the runner's slot gather (`from`: what it reads; on WebGPU
 * captured, writing into the bound slots); else `grow` makes tensors of the new capacity. A
 * captured gather that fails once it has started may have written part of the slots: this memory
 * is then no longer the one its metadata describes (`invalid`: the host reloads the durable copy).
 * @returns the kept tensors (`memory.kv` itself when written in place)
 */
async function keepRows(ctx: StaticContext, runner: Runner, memory: ResidentMemory, rows: Int32Array[], from: { kv: Tensor[]; added?: Tensor[] }, slots: number, capacity: number, grow: () => Promise<Tensor[]>): Promise<Tensor[]> {
  if (capacity !== slots) return grow()
  const kept = (await slotGather(ctx, runner, rows, from, () => (memory.invalid = true))) ?? memory.kv
  memory.invalid = undefined
  return kept
}

/** A captured step's result: the slots `kv` disposed when new tensors replaced them, with the graphs
 * bound to them (WebGPU) or built for the old capacity `slots`, then `residentOutcome`. */
function staticOutcome(
  ctx: StaticContext,
  memory: ResidentMemory,
  kv: Tensor[],
  kept: Tensor[],
  slots: number,
  capacity: number,
  next: SessionMemory,
  action: ReturnType<Adapter['decode']>,
  logits: Float32Array,
  request: StepRequest,
  times: number[],
): { outcome: StepOutcome; resident: ResidentMemory } {
  const bound = memory.bound!
  if (kept !== kv) {
    disposeAll(kv)
    if (ctx.backend === 'webgpu' || capacity !== slots) bound.release()
  }
  const r = residentOutcome(next, kept, capacity, action, logits, request, ctx.source.manifest.vocabSize, times, bound)
  if (memory.half) r.resident.half = true // the kept rows were rounded: the next step rounds too
  return r
}

/**
 * A TempoFit step on a fixed-capacity bank (captured on WebGPU): as `residentTempoStep`
 * (`resident.ts`) with the same results, the bank kept in `memory.capacity` slots per head and
 * memory layer (the real rows first, then padding under a masked `tempo_bias`). The fixed TempoFit
 * graph (`buildDecoderOnnx` with `fixed.bank`: no carried K/V, the bank as bound inputs) replays;
 * the policy keeps the last frames on tag rows (`updateTempoOnTags`), and the slot gather's concat
 * variant writes the kept rows of [bank, this step's `tempo_prefix`] into the bank slots. When the
 * kept bank outgrows the capacity it doubles (`capacityFor`): the dynamic concat gather makes new
 * tensors and the bound graphs are rebuilt. `memory` is consumed (use the returned `resident`).
 * @param concatGather the runtime of `buildKvGather({ …, layers: tempo layers, concat: true })`
 * @returns the outcome (its `memory`: the bank's metadata) and the new resident bank
 * @throws as `runStep`: BadRequestError, StepkvError `too_many_tokens` (413) / `memory_limit`
 *   (422), NumericError for non-finite logits or, with `memory.half`, a new row that is NaN or
 *   overflows float16 (any new row, as `residentStaticStep`; the old bank stays valid then); Error
 *   when `memory` has no capacity
 * @see TempoFit, arXiv:2603.07647
 */
export async function residentStaticTempoStep(
  ctx: StaticContext,
  concatGather: ModelRuntime,
  memory: ResidentMemory,
  policy: Policy,
  request: StepRequest,
  limits: EngineLimits,
  adapter: Adapter,
): Promise<{ outcome: StepOutcome; resident: ResidentMemory }> {
  const m = ctx.source.manifest
  const Mc = memory.capacity
  if (Mc === undefined) throw new Error('the captured TempoFit step needs a fixed-capacity bank')
  const now = () => performance.now()
  const t0 = now()
  const prefix = await encodeStepPrefix(adapter, request, limits)
  const S = prefix.tokens
  const bank = memory.meta
  const M = bank.tokens
  const positions = stepPositions(0, S, m) // no carried K/V: every step starts at position 0
  const window = stepWindow(policy, request, S)
  const Sb = bucketOf(S)
  const tables = staticTables(positions, 0, 0, window, m, Sb)
  // the Frame-Gap Temporal Bias of the M real rows, the empty slots masked
  const real = tempoBiasFor(bank, request.seq, policy.params)
  const bias = new Float32Array(m.kvHeads * Mc).fill(MASKED_SCORE)
  for (let h = 0; h < m.kvHeads; h++) bias.set(real.subarray(h * M, (h + 1) * M), h * Mc)
  // on WebGPU the bank must be device buffers the graph can bind (in place: the caller's memory stays
  // valid if this step fails): an uploaded bank moves there through the concat gather, appended to
  // itself and the first Mc rows of each head kept
  if (ctx.backend === 'webgpu' && memory.kv.some((t) => t.location !== 'gpu-buffer')) {
    const first = inFirstCopy(identityRows(m.kvHeads, Mc), Mc)
    memory.kv = await gatherKept(concatGather, m.tempoLayers.map(() => first), memory.kv, memory.kv)
  }
  const kv = memory.kv
  const bound = (memory.bound ??= new StaticRunners())
  const half = !!memory.half
  const runner = await runnerFor(ctx, bound, Sb, 0, kv, [], half, Mc)
  const t1 = now()
  const out = await runBound(ctx, runner, prefix, tables, kv, half ? ['logits', KV_ABSMAX_OUTPUT] : ['logits'], bias)
  const t2 = now()
  const logits = out.host.logits.subarray(0, S * m.vocabSize) // the real rows
  let action: ReturnType<Adapter['decode']>
  let next: SessionMemory
  let t3: number
  let kept: Tensor[]
  let capacity: number
  try {
    action = decodeChecked(logits, adapter, m.vocabSize)
    if (half) checkHalfAbsMax(out.host[KV_ABSMAX_OUTPUT][0]) // before anything is written: the old bank stays
    t3 = now()
    let width: number
    ;({ next, width } = updateTempoOnTags(policy, bank, S, { seq: request.seq, prefixTokens: S, kinds: prefix.kinds }, limits))
    const K = next.tokens
    capacity = capacityFor(Mc, K, limits.maxMemoryTokens)
    // tags t < M: bank slot t; t ≥ M: new row t − M, at Mc + t − M of [bank, tempo_prefix] per head
    const rows = next.layers.map((l) => slotRows(l.values, m.kvHeads, K, M, Mc, Sb, capacity, width))
    kept = await keepRows(ctx, runner, memory, rows, { kv, added: out.present }, Mc, capacity, () => gatherKept(concatGather, rows, kv, out.present, half))
  } finally {
    out.release()
  }
  return staticOutcome(ctx, memory, kv, kept, Mc, capacity, next, action, logits, request, [t0, t1, t2, t3])
}
