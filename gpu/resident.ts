/**
 * @module Device-resident KV memory: within a hot session on the GPU host, `present.{l}.*` come
 * back as device tensors (`preferredOutputLocation: 'gpu-buffer'`) and are fed as the next step's
 * `past_key_values.{l}.*`; replaced tensors are disposed. Only metadata (positions, frames, kinds,
 * H2O scores) lives on the host. Pruning policies decide on the host from small outputs
 * (`attn_window`/`attn_total` [Hkv, T], `hidden_norm` [S] per layer) and the kept rows are gathered
 * on the device by a small ONNX graph (`kv-gather.ts`). For float32 and float16 storage the K/V
 * bytes cross to the host only for the durable copy (`materialize`), and the keys of a policy that
 * reads them (`readsKeys`: GUI-KV's key subspace) each step: `[Hkv, P + S, Dh]` per layer down,
 * nothing up, values never (a KIVI memory moves rows both ways: below). On wasm the
 * same code runs with host tensors (what the tests exercise). A TempoFit bank stays on the device
 * too (`residentTempoStep`: the step's `tempo_prefix` outputs appended and the oldest frames dropped
 * by the gather graph's concat variant; only the bias is built on the host). A float16 session stays
 * on the device too (`ResidentMemory.half`): every step gathers with the `half` gather, which rounds
 * the kept rows to float16 and back (what a reload of the stored blob gives) and reports their max
 * |x| for the overflow check. A KIVI session (carried K/V or a TempoFit bank) stays on the device
 * with a host mirror (`ResidentMemory.mirror`): KIVI's per-layer decisions and block
 * re-quantization run on the host (`roundTrip`, the codec's own quantizer), on the mirror plus this
 * step's new rows (the only rows that come down; a policy that reads keys reads them from the
 * mirror and the new rows), and only the rows the device does not hold with the same bits go up
 * (`mirroredKeep`); the device then holds exactly what a reload of the blob gives, and the durable
 * copy needs no download.
 */
import type { Tensor } from 'onnxruntime-web'
import type { Adapter } from '../agents/adapter.ts'
import { NumericError } from '../memory/errors.ts'
import { roundTrip, type StorageOptions } from '../memory/storage.ts'
import { tempoBiasFor } from '../memory/policies/tempofit.ts'
import { appendPrefix, concatRows, padRows, realRows, type PrefixMeta } from '../memory/session.ts'
import type { Policy, SessionMemory, StepInfo } from '../memory/types.ts'
import { encodeStepPrefix, memoryLimitError, stepPositions, stepWindow, type EngineLimits, type StepOutcome, type StepRequest } from '../worker/engine.ts'
import { checkHalfAbsMax, gatherNames, KV_ABSMAX } from './kv-gather.ts'
import { releaseOnDevice, type ModelRuntime } from './session.ts'
import type { StaticRunners } from './static-step.ts'

/** A session memory whose K/V live in ORT tensors (device buffers on WebGPU).
 * `meta` is the memory with zero-length `keys`/`values` (all other fields real); `kv[2l]`,
 * `kv[2l+1]` are layer l's key and value `[1, Hkv, meta.tokens, Dh]`, or, with a fixed capacity,
 * `[1, Hkv, capacity, Dh]`: the `meta.tokens` real rows of each head first, then padding rows
 * (finite values: zeros after an upload, copies of a kept row after a step; masked out by the
 * step's `attention_mask`). */
export interface ResidentMemory {
  meta: SessionMemory
  kv: Tensor[]
  /** Rows per head of the fixed-capacity layout (tokens); absent: exactly `meta.tokens` rows. */
  capacity?: number
  /** The fixed-capacity float-table graphs bound to this memory's `kv` (`static-step.ts`): released
   * with it. */
  bound?: StaticRunners
  /** Set when a step failed while writing `kv` in place: the K/V no longer match `meta`; the holder
   * must drop this memory and reload its durable copy. */
  invalid?: boolean
  /** float16 storage: every value of `kv` is float16-representable, and each step rounds the rows it
   * keeps (the gathers' `half` variants) and refuses a row that overflows float16. */
  half?: boolean
  /** KIVI storage (carried K/V, no fixed capacity): the host's copy of the memory, equal to the
   * device's rows bit for bit and to what a reload of the stored blob gives (`roundTrip`), with the
   * storage it was quantized for; `materialize` returns it without a download. */
  mirror?: { memory: SessionMemory; storage: StorageOptions }
}

/**
 * The fixed capacity (tokens per head) for `needed` rows: `capacity`, doubled until it holds them,
 * but never more than `max(needed, limit)` (the doubling stops at the memory limit).
 * @param limit most rows worth holding (the host's `maxMemoryTokens`); default unbounded
 * @throws RangeError if `capacity` is not an integer ≥ 1
 */
export function capacityFor(capacity: number, needed: number, limit = Infinity): number {
  if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be an integer ≥ 1, got ${capacity}`)
  let c = capacity
  while (c < needed) c *= 2
  return Math.min(c, Math.max(needed, limit))
}

/** True when a session's memory can stay on the device: every storage (see the module note; KIVI
 * with a host mirror, which the GPU host uses for carried-KV policies on the dynamic layout only). */
export function residentSupported(storage: string): boolean {
  return storage === 'float32' || storage === 'float16' || storage === 'kivi'
}

/**
 * Uploads a host memory: host tensors the next run copies to the device.
 * @param capacity fixed-capacity layout: rows per head (tokens; doubled while smaller than
 *   `mem.tokens`, up to `limit`), padding rows zero; absent: exactly `mem.tokens` rows
 * @throws RangeError for a capacity that is not an integer ≥ 1
 */
export function residentFrom(mem: SessionMemory, runtime: ModelRuntime, capacity?: number, limit?: number): ResidentMemory {
  const ort = runtime.ortModule
  const { kvHeads, tokens, headDim } = mem
  if (capacity === undefined) {
    const dims = [1, kvHeads, tokens, headDim]
    const kv = mem.layers.flatMap((l) => [new ort.Tensor('float32', l.keys, dims), new ort.Tensor('float32', l.values, dims)])
    return { meta: stripKv(mem), kv }
  }
  const C = capacityFor(capacity, tokens, limit)
  // padRows returns its input when C = tokens: copy then too, the device tensor must own its data
  const pad = (a: Float32Array) => new ort.Tensor('float32', C === tokens ? a.slice() : padRows(a, kvHeads, tokens, C, headDim), [1, kvHeads, C, headDim])
  return { meta: stripKv(mem), kv: mem.layers.flatMap((l) => [pad(l.keys), pad(l.values)]), capacity: C }
}

/**
 * The memory with its K/V on the host (the durable copy, or a policy that needs host data). A
 * mirrored (KIVI) memory returns its mirror itself, no download: the caller must not modify it (its
 * arrays are the ones the cached packed form, `packed-cache.ts`, was made from). Otherwise this
 * downloads the K/V: a full host memory. The
 * device tensors stay device tensors: ORT's `Tensor.getData()` would turn each into a host tensor
 * (the next step would upload it again) while its device buffer stays allocated behind it (measured
 * on the H200: 8 live buffers more per step, `npm run bench`'s GPU growth check), so the tensor's
 * own downloader is called instead, which flushes ORT's pending GPU work and copies through a
 * staging buffer.
 * @throws Error when the onnxruntime-web build has no downloader on a device tensor (internals of
 *   the pinned 1.30 changed)
 */
export async function materialize(r: ResidentMemory): Promise<SessionMemory> {
  if (r.mirror) return r.mirror.memory
  const { kvHeads, tokens, headDim } = r.meta
  // the real rows of each head (a copy, also when the capacity is full)
  const real = (a: Float32Array) => (r.capacity === undefined ? a : r.capacity === tokens ? a.slice() : realRows(a, kvHeads, tokens, r.capacity, 0, headDim))
  const data = await Promise.all(r.kv.map(async (t) => real(await downloadKeeping(t))))
  return { ...r.meta, layers: r.meta.layers.map((l, i) => ({ ...l, keys: data[2 * i], values: data[2 * i + 1] })) }
}

/** A float32 tensor's values on the host, without changing where the tensor lives. */
export async function downloadKeeping(t: Tensor): Promise<Float32Array> {
  if (t.location === 'cpu') return t.data as Float32Array
  const download = (t as unknown as { downloader?: () => Promise<Float32Array> }).downloader
  if (typeof download !== 'function') throw new Error(`onnxruntime-web: a '${t.location}' tensor has no downloader (the pinned 1.30 internals changed)`)
  return download()
}

/** Releases the device buffers of `r` (host tensors just drop their data). Every tensor is
 * disposed whatever its location: a device tensor ORT has turned into a host one still holds its buffer. */
export function disposeResident(r: ResidentMemory | undefined): void {
  if (r) disposeAll(r.kv)
  r?.bound?.release()
}

/**
 * One step on a device-resident memory: as `runStep` (worker/engine.ts) for carried-KV policies,
 * with the K/V never leaving the device. `memory` is consumed: its tensors are disposed or reused;
 * use the returned `resident` from then on.
 * @param gather the runtime of `buildKvGather` for this model's geometry
 * @param concatGather its concat variant (`buildKvGather({ concat: true })`, all layers): needed
 *   with `memory.mirror` (KIVI), which uploads its changed rows through it
 * @returns the outcome (its `memory` holds metadata only: zero-length keys/values) and the new
 *   resident memory
 * @throws as `runStep`: BadRequestError, StepkvError `too_many_tokens` (413) / `memory_limit`
 *   (422), NumericError for non-finite logits or, with `memory.half`, a kept row that is NaN or
 *   overflows float16, or, with `memory.mirror`, a new row that is not finite (KIVI); the old
 *   memory stays valid then
 */
export async function residentStep(
  runtime: ModelRuntime,
  gather: ModelRuntime,
  memory: ResidentMemory,
  policy: Policy,
  request: StepRequest,
  limits: EngineLimits,
  adapter: Adapter,
  concatGather?: ModelRuntime,
): Promise<{ outcome: StepOutcome; resident: ResidentMemory }> {
  const m = runtime.manifest
  const ort = runtime.ortModule
  const now = () => performance.now()
  const t0 = now()
  const prefix = await encodeStepPrefix(adapter, request, limits)
  const S = prefix.tokens
  const mem = memory.meta
  const P = mem.tokens
  // fixed capacity: C past rows per head fed (the first P real, the rest masked padding)
  const C = memory.capacity ?? P
  const positions = stepPositions(mem.nextPosition, S, m)
  const mask = new BigInt64Array(C + S).fill(1n)
  mask.fill(0n, P, C)
  const feeds = stepFeeds(runtime, prefix, positions, mask, policy, request, memory.kv)
  // a TempoFit model serving a carried-KV policy: its bank ports get an empty bank (as in runStep)
  if (m.ports.tempo) {
    for (const l of m.tempoLayers)
      for (const part of ['key', 'value']) feeds[`tempo.${l}.${part}`] = emptyKv(runtime)
    feeds.tempo_bias = new ort.Tensor('float32', new Float32Array(0), [1, m.kvHeads, 1, 0])
  }
  const ports = { attnWindow: 'attn_window', attnTotal: 'attn_total', hiddenNorm: 'hidden_norm' } as const
  const small = (policy.requires ?? []).filter((r): r is keyof typeof ports => r in ports).map((r) => ports[r])
  const present = Array.from({ length: m.layers }, (_, l) => [`present.${l}.key`, `present.${l}.value`]).flat()
  const fetches = ['logits', ...present, ...small.flatMap((p) => Array.from({ length: m.layers }, (_, l) => `${p}.${l}`))]
  const t1 = now()
  const out = await runtime.runTensors(feeds, fetches)
  const t2 = now()
  const newKv = present.map((n) => out[n])
  const logits = out.logits.data as Float32Array
  // from here on an error (non-finite logits, the policy, the memory limit, the gather) releases
  // this step's present tensors; the old memory stays valid
  let action: ReturnType<Adapter['decode']>
  let next: SessionMemory
  let kept: Tensor[] = newKv
  let capacity = memory.capacity
  let mirror: ResidentMemory['mirror']
  let t3: number
  try {
    action = decodeChecked(logits, adapter, m.vocabSize)
    t3 = now()
    // per-layer small outputs; attn_* are [Hkv, C + S]: with padding, only the real columns
    const realColumns = (a: Float32Array) => realRows(a, m.kvHeads, P, C, S, 1)
    const perLayer = (p: string) =>
      small.includes(p as never)
        ? Array.from({ length: m.layers }, (_, l) => (p === 'hidden_norm' ? (out[`${p}.${l}`].data as Float32Array) : realColumns(out[`${p}.${l}`].data as Float32Array)))
        : undefined
    const info: StepInfo = { seq: request.seq, prefixTokens: S, kinds: prefix.kinds, attnWindow: perLayer('attn_window'), attnTotal: perLayer('attn_total'), hiddenNorm: perLayer('hidden_norm') }
    // The policy runs on tagged rows: row t of every head carries t in its first V value, so the
    // rows it keeps name themselves and the device gathers exactly those. Keys are the tags too,
    // unless the policy reads them: then the real keys come down (the real rows of each head).
    // Tag rows are 1 wide (`tagWidth`) unless the real keys set the width.
    const T = P + S
    // a mirrored (KIVI) memory: only the new rows come down, the rest is on the host already
    const fresh = memory.mirror ? await newRowsOf(gather, newKv, m.kvHeads, P, S) : undefined
    const realKeys = !policy.readsKeys
      ? undefined
      : fresh
        ? mem.layers.map((_, l) => concatRows(memory.mirror!.memory.layers[l].keys, fresh[2 * l], m.kvHeads, P, S, m.headDim))
        : await Promise.all(mem.layers.map(async (_, l) => realRows(await downloadKeeping(newKv[2 * l]), m.kvHeads, P, C, S, m.headDim)))
    let width: number
    ;({ next, width } = updateOnTags(policy, mem, T, realKeys, { seq: request.seq, positions, kinds: prefix.kinds }, info, limits))
    const K = next.tokens
    let rows: (Int32Array | null)[]
    if (capacity !== undefined) {
      // every step gathers (all `capacity` rows): the new rows move from C … C+S−1 to the slots
      // after the kept ones
      const c = (capacity = capacityFor(capacity, K, limits.maxMemoryTokens))
      rows = next.layers.map((l) => slotRows(l.values, m.kvHeads, K, P, C, S, c, width))
    } else rows = next.layers.map((l) => keptRows(l.values, m.kvHeads, K, T, width))
    if (memory.mirror) {
      if (capacity !== undefined || !concatGather || !fresh) throw new Error('a mirrored (KIVI) memory needs the dynamic layout and the concat gather')
      ;({ kept, mirror } = await mirroredKeep(concatGather, gather, memory.mirror, next, rows.map((r) => r ?? identityRows(m.kvHeads, T)), fresh, P, S, newKv, T))
    }
    // a float16 memory gathers every step: the new rows are rounded on the way
    else if (memory.half || rows.some((r) => r !== null)) kept = await gatherKept(gather, rows.map((r) => r ?? identityRows(m.kvHeads, T)), newKv, undefined, memory.half)
  } catch (e) {
    disposeAll(newKv)
    throw e
  }
  const r = settle(memory, newKv, kept, next, capacity, action, logits, request, m.vocabSize, [t0, t1, t2, t3])
  if (mirror) r.resident.mirror = mirror
  return r
}

/**
 * The rows a mirrored (KIVI) memory's step adds, on the host: gathered out of the carried path's
 * `present` (`[1, Hkv, P + S, Dh]`: only rows P … P + S − 1 of each head come down).
 * @returns per tensor (key then value per layer) `[Hkv, S, Dh]`
 */
async function newRowsOf(gather: ModelRuntime, present: Tensor[], H: number, P: number, S: number): Promise<Float32Array[]> {
  const ids = new Int32Array(H * S)
  for (let h = 0; h < H; h++) for (let s = 0; s < S; s++) ids[h * S + s] = h * (P + S) + P + s
  const picked = await gatherKept(gather, Array.from({ length: present.length / 2 }, () => ids), present)
  try {
    return await Promise.all(picked.map(downloadKeeping))
  } finally {
    disposeAll(picked)
  }
}

/**
 * The kept rows of a mirrored (KIVI) memory after a step, and its new mirror. The kept rows are
 * assembled on the host from the mirror (rows t < P) and this step's new rows (`fresh`, t ≥ P),
 * `roundTrip` quantizes and dequantizes them as the codec does (KIVI, arXiv:2402.02750: per-layer
 * decisions, re-quantized key blocks, float16 residual), and only the rows the device does not
 * already hold with the same bits go up: the concat gather picks each kept row either from
 * `source` (rows 0 … sourceRows − 1 of each head: the carried path's `present`, sourceRows = P + S;
 * a TempoFit bank, sourceRows = P, whose new rows then always go up) or from the uploaded rows
 * (`[1, Hkv, U, Dh]`, U = most uploaded rows of any head and layer, zero-padded). The device's rows
 * then equal the new mirror bit for bit.
 * @param ids per layer, the kept flat row ids h·(P + S) + t (`[Hkv·K]`)
 * @param fresh per tensor (key then value per layer) the S new rows `[Hkv, S, Dh]`
 * @param plainGather `buildKvGather` (no concat): used when nothing goes up but rows are dropped
 * @returns the kept tensors `[1, Hkv, K, Dh]` (key then value per layer; `source` itself when
 *   nothing changed and every row is kept in order) and the new mirror (metadata of `next`)
 * @throws NumericError from `roundTrip` (a new row that is not finite); nothing is kept then (the
 *   caller disposes its tensors)
 */
async function mirroredKeep(
  concatGather: ModelRuntime,
  plainGather: ModelRuntime | undefined,
  mirror: NonNullable<ResidentMemory['mirror']>,
  next: SessionMemory,
  ids: Int32Array[],
  fresh: Float32Array[],
  P: number,
  S: number,
  source: Tensor[],
  sourceRows: number,
): Promise<{ kept: Tensor[]; mirror: NonNullable<ResidentMemory['mirror']> }> {
  const ort = concatGather.ortModule
  const { kvHeads: H, headDim: D } = mirror.memory
  const T = P + S
  const K = next.tokens
  // the kept rows before quantization
  const raw: SessionMemory = {
    ...next,
    layers: next.layers.map((layer, l) => {
      const parts = [0, 1].map((j) => {
        const i = 2 * l + j
        const old = j ? mirror.memory.layers[l].values : mirror.memory.layers[l].keys
        const out = new Float32Array(H * K * D)
        for (let h = 0; h < H; h++)
          for (let k = 0; k < K; k++) {
            const t = ids[l][h * K + k] - h * T
            out.set(t < P ? old.subarray((h * P + t) * D, (h * P + t + 1) * D) : fresh[i].subarray((h * S + t - P) * D, (h * S + t - P + 1) * D), (h * K + k) * D)
          }
        return out
      })
      return { ...layer, keys: parts[0], values: parts[1] }
    }),
  }
  const deq = roundTrip(raw, mirror.storage, mirror.memory) // KIVI: unchanged groups are copied
  // rows to upload: not in `source`, or bits changed (a row is its key and value: one id picks both)
  const upload = deq.layers.map((layer, l) => {
    const bits = [raw.layers[l].keys, raw.layers[l].values, layer.keys, layer.values].map((a) => new Uint32Array(a.buffer, a.byteOffset, a.length))
    return Array.from({ length: H }, (_, h) => {
      const list: number[] = []
      for (let k = 0; k < K; k++) {
        if (ids[l][h * K + k] - h * T >= sourceRows) {
          list.push(k)
          continue
        }
        const o = (h * K + k) * D
        for (let d = 0; d < D; d++)
          if (bits[0][o + d] !== bits[2][o + d] || bits[1][o + d] !== bits[3][o + d]) {
            list.push(k)
            break
          }
      }
      return list
    })
  })
  const U = Math.max(0, ...upload.flat().map((c) => c.length))
  const nextMirror = { memory: deq, storage: mirror.storage }
  if (U === 0) {
    const inOrder = ids.every((r) => r.length === H * sourceRows && r.every((v, i) => v === i))
    if (inOrder) return { kept: source, mirror: nextMirror }
    if (!plainGather) throw new Error('mirroredKeep: rows dropped with nothing to upload needs the plain gather')
    return { kept: await gatherKept(plainGather, ids, source), mirror: nextMirror }
  }
  // an empty source (a TempoFit bank's first step): the uploaded rows appended to themselves (no
  // zero-length device tensor), every id in the first copy
  const width = sourceRows + U
  const added: Tensor[] = []
  const concatIds = deq.layers.map((layer, l) => {
    const out = new Int32Array(H * K)
    const up = [new Float32Array(H * U * D), new Float32Array(H * U * D)]
    for (let h = 0; h < H; h++) {
      for (let k = 0; k < K; k++) out[h * K + k] = ids[l][h * K + k] - h * T + h * width
      upload[l][h].forEach((k, j) => {
        out[h * K + k] = h * width + sourceRows + j
        up[0].set(layer.keys.subarray((h * K + k) * D, (h * K + k + 1) * D), (h * U + j) * D)
        up[1].set(layer.values.subarray((h * K + k) * D, (h * K + k + 1) * D), (h * U + j) * D)
      })
    }
    added.push(...up.map((a) => new ort.Tensor('float32', a, [1, H, U, D])))
    return sourceRows ? out : inFirstCopy(out, U)
  })
  try {
    return { kept: await gatherKept(concatGather, concatIds, sourceRows ? source : added, added), mirror: nextMirror }
  } finally {
    disposeAll(added)
  }
}

/**
 * One TempoFit step on a device-resident bank: as `runStep` (worker/engine.ts) for `tempofit`, with
 * the bank's K/V never leaving the device. The step prefills its prefix with an empty past (no
 * carried KV), reads the bank through the `tempo.{l}.key|value` ports with the Frame-Gap Temporal
 * Bias built on the host from the bank's frame ids, and the policy runs on tagged rows (bank row t
 * and new row M + t carry their index in the first V value), so the rows it keeps — the last
 * `frames` frames — are gathered on the device from the bank with this step's `tempo_prefix`
 * appended (`concatGather`: the gather graph's concat variant). The first step's bank is the prefix
 * itself (no graph run on an empty bank, except with `memory.half`: the concat gather rounds it). `memory` is consumed, as in `residentStep`. Unlike
 * `runStep`, the `tempo_prefix` rows are not checked for finiteness on the host (they stay on the
 * device); a non-finite one shows in this step's logits, which are checked.
 * @param concatGather the runtime of `buildKvGather({ …, layers: tempo layers, concat: true })`
 * @returns the outcome (its `memory`: the bank's metadata, zero-length K/V) and the new resident bank
 * @throws BadRequestError, StepkvError `too_many_tokens` (413) / `memory_limit` (422), as
 *   `runStep`; NumericError for non-finite logits or, with `memory.half`, a kept row that is NaN
 *   or overflows float16 (the old bank stays valid then)
 * @see TempoFit, arXiv:2603.07647
 */
export async function residentTempoStep(
  runtime: ModelRuntime,
  concatGather: ModelRuntime,
  memory: ResidentMemory,
  policy: Policy,
  request: StepRequest,
  limits: EngineLimits,
  adapter: Adapter,
): Promise<{ outcome: StepOutcome; resident: ResidentMemory }> {
  const m = runtime.manifest
  const ort = runtime.ortModule
  const now = () => performance.now()
  const t0 = now()
  const prefix = await encodeStepPrefix(adapter, request, limits)
  const S = prefix.tokens
  const bank = memory.meta
  const M = bank.tokens
  const positions = stepPositions(0, S, m)
  // no carried K/V: every layer's past is empty
  const past = Array.from({ length: 2 * m.layers }, () => emptyKv(runtime))
  const feeds = stepFeeds(runtime, prefix, positions, new BigInt64Array(S).fill(1n), policy, request, past)
  m.tempoLayers.forEach((l, i) => {
    feeds[`tempo.${l}.key`] = memory.kv[2 * i]
    feeds[`tempo.${l}.value`] = memory.kv[2 * i + 1]
  })
  const bias = tempoBiasFor(bank, request.seq, policy.params)
  feeds.tempo_bias = new ort.Tensor('float32', bias, [1, m.kvHeads, 1, M])
  const added = m.tempoLayers.flatMap((l) => [`tempo_prefix.${l}.key`, `tempo_prefix.${l}.value`])
  const t1 = now()
  const out = await runtime.runTensors(feeds, ['logits', ...added])
  const t2 = now()
  const newKv = added.map((n) => out[n])
  const logits = out.logits.data as Float32Array
  let action: ReturnType<Adapter['decode']>
  let next: SessionMemory
  let kept: Tensor[] = newKv
  let mirror: ResidentMemory['mirror']
  let t3: number
  try {
    action = decodeChecked(logits, adapter, m.vocabSize)
    t3 = now()
    const T = M + S
    let width: number
    ;({ next, width } = updateTempoOnTags(policy, bank, S, { seq: request.seq, prefixTokens: S, kinds: prefix.kinds }, limits))
    // kept flat row ids h·T + t into the bank with the new rows appended
    const rows = next.layers.map((l) => keptRows(l.values, m.kvHeads, next.tokens, T, width) ?? identityRows(m.kvHeads, T))
    if (memory.mirror) {
      // KIVI: the new rows (this step's tempo_prefix, exactly S rows per head) come down whole
      const fresh = await Promise.all(newKv.map(downloadKeeping))
      ;({ kept, mirror } = await mirroredKeep(concatGather, undefined, memory.mirror, next, rows, fresh, M, S, memory.kv, M))
    } else if (M > 0) kept = await gatherKept(concatGather, rows, memory.kv, newKv, memory.half)
    else if (memory.half) {
      // an empty float16 bank (T = S): the new rows rounded through the concat gather, appended to
      // themselves (no zero-length device tensor), the kept ones taken from the first copy
      kept = await gatherKept(concatGather, rows.map((r) => inFirstCopy(r, S)), newKv, newKv, true)
    }
  } catch (e) {
    disposeAll(newKv)
    throw e
  }
  const r = settle(memory, newKv, kept, next, undefined, action, logits, request, m.vocabSize, [t0, t1, t2, t3])
  if (mirror) r.resident.mirror = mirror
  return r
}

/** The action from the last prefix position's logits. @throws NumericError naming the first non-finite logit */
export function decodeChecked(logits: Float32Array, adapter: Adapter, vocabSize: number): ReturnType<Adapter['decode']> {
  const bad = logits.findIndex((v) => !Number.isFinite(v))
  if (bad >= 0) throw new NumericError(`model output 'logits' holds a non-finite value at index ${bad}`, { output: 'logits' })
  return adapter.decode(logits.subarray(logits.length - vocabSize))
}

/**
 * Runs the gather graph: per stored layer i, `kv.{i}.key|value` from `input[2i]`, `input[2i+1]`
 * (`[1, Hkv, T, Dh]`; with the concat variant, `added` appended first) and `rows.{i}` from
 * `rows[i]` (int32 flat ids h·T + t, `[Hkv·K]`).
 * @param half the runtime is the `half` gather (a float16 memory): the kept rows come back rounded
 *   to float16, and `kv_absmax` is checked
 * @returns the kept tensors `[1, Hkv, K, Dh]`, key then value per layer (ORT allocates them; the
 *   captured step's in-place gather is `slotGather` in `static-step.ts`)
 * @throws NumericError (`half`) when a kept row is NaN or overflows float16; the kept tensors are
 *   disposed then
 */
export async function gatherKept(gather: ModelRuntime, rows: Int32Array[], input: Tensor[], added?: Tensor[], half = false): Promise<Tensor[]> {
  const ort = gather.ortModule
  const feeds: Record<string, Tensor> = {}
  const fetches: string[] = []
  rows.forEach((r, i) => {
    feeds[gatherNames(i, 'key').rows] = new ort.Tensor('int32', r, [r.length])
    for (const [j, part] of (['key', 'value'] as const).entries()) {
      const n = gatherNames(i, part)
      feeds[n.input] = input[2 * i + j]
      if (added) feeds[n.added] = added[2 * i + j]
      fetches.push(n.output)
    }
  })
  const g = await gather.runTensors(feeds, half ? [...fetches, KV_ABSMAX] : fetches)
  for (const t of Object.values(feeds)) if (t.type === 'int32') t.dispose()
  const kept = fetches.map((n) => g[n])
  if (half) {
    const absmax = (g[KV_ABSMAX].data as Float32Array)[0] // a host tensor: not in preferredOutputLocation
    try {
      checkHalfAbsMax(absmax)
    } catch (e) {
      disposeAll(kept)
      throw e
    }
  }
  return kept
}

/** Disposes every tensor of `ts` as a job of the device queue (`releaseOnDevice`: never while a
 * captured replay waits in ORT's `run()`, and the next captured run flushes ORT's releases first;
 * host tensors too, since one ORT made from a device tensor may still hold its buffer). */
export const disposeAll = (ts: Tensor[]) => {
  if (ts.length) void releaseOnDevice(() => ts.forEach((t) => t.dispose()))
}

/**
 * The end of a resident step that succeeded: this step's new tensors are disposed unless they are
 * the kept ones, the old memory's tensors are disposed, and the outcome is assembled (`times`: the
 * clock at start, before and after the run, after decoding; ms).
 */
function settle(
  memory: ResidentMemory,
  newKv: Tensor[],
  kept: Tensor[],
  next: SessionMemory,
  capacity: number | undefined,
  action: ReturnType<Adapter['decode']>,
  logits: Float32Array,
  request: StepRequest,
  vocabSize: number,
  [t0, t1, t2, t3]: number[],
): { outcome: StepOutcome; resident: ResidentMemory } {
  if (kept !== newKv) disposeAll(newKv)
  disposeResident(memory)
  const r = residentOutcome(next, kept, capacity, action, logits, request, vocabSize, [t0, t1, t2, t3])
  if (memory.half) r.resident.half = true // the kept rows were rounded: the next step rounds too
  return r
}

/**
 * A resident step's result once its tensors are settled: the new resident memory (`kv` kept,
 * metadata of `next`, `capacity` and the bound graphs when given) and the outcome, its `logits`
 * `[S, vocabSize]` (only when requested) and timings from the clock marks `[t0 … t3]` (start, before
 * and after the run, after decoding; ms) to now.
 */
export function residentOutcome(
  next: SessionMemory,
  kept: Tensor[],
  capacity: number | undefined,
  action: ReturnType<Adapter['decode']>,
  logits: Float32Array,
  request: StepRequest,
  vocabSize: number,
  [t0, t1, t2, t3]: number[],
  bound?: StaticRunners,
): { outcome: StepOutcome; resident: ResidentMemory } {
  const t4 = performance.now()
  const meta = stripKv(next)
  const S = logits.length / vocabSize
  return {
    resident: { meta, kv: kept, ...(capacity !== undefined && { capacity }), ...(bound && { bound }) },
    outcome: {
      memory: meta,
      action,
      prefixTokens: S,
      logits: request.options?.returnLogits ? { dims: [S, vocabSize], data: logits } : undefined,
      timings: { loadMs: 0, encodeMs: t1 - t0, prefillMs: t2 - t1, decodeMs: t3 - t2, policyMs: t4 - t3, persistMs: 0 },
    },
  }
}

/**
 * The contract's step feeds as ORT tensors, as `runStep` builds them: `inputs_embeds [1, S, D]` (or
 * `input_ids`), `position_ids [1, S]`, `attention_mask [1, mask.length]`, `past_key_values.{l}.*`
 * from `past` (key then value per layer) and, when the model has the port, `obs_window` (w =
 * min(S, the policy's or the request's observation window, default 8)).
 */
function stepFeeds(runtime: ModelRuntime, prefix: { tokens: number; inputsEmbeds?: Float32Array; inputIds?: ArrayLike<number> }, positions: ArrayLike<number>, mask: BigInt64Array, policy: Policy, request: StepRequest, past: Tensor[]): Record<string, Tensor> {
  const m = runtime.manifest
  const ort = runtime.ortModule
  const S = prefix.tokens
  const feeds: Record<string, Tensor> = {
    ...(prefix.inputsEmbeds
      ? { inputs_embeds: new ort.Tensor('float32', prefix.inputsEmbeds, [1, S, m.hiddenSize]) }
      : { input_ids: new ort.Tensor('int64', BigInt64Array.from(prefix.inputIds!, BigInt), [1, S]) }),
    position_ids: new ort.Tensor('int64', BigInt64Array.from(positions, BigInt), [1, S]),
    attention_mask: new ort.Tensor('int64', mask, [1, mask.length]),
  }
  for (let l = 0; l < m.layers; l++) {
    feeds[`past_key_values.${l}.key`] = past[2 * l]
    feeds[`past_key_values.${l}.value`] = past[2 * l + 1]
  }
  if (m.ports.obsWindow) {
    const window = stepWindow(policy, request, S)
    const port = m.inputs.find((q) => q.name === 'obs_window')!
    feeds.obs_window = new ort.Tensor('int64', BigInt64Array.of(BigInt(window)), port.dims.map(() => 1))
  }
  return feeds
}

/** A zero-row K/V tensor `[1, Hkv, 0, Dh]` (an empty past or bank). */
const emptyKv = (runtime: ModelRuntime) => new runtime.ortModule.Tensor('float32', new Float32Array(0), [1, runtime.manifest.kvHeads, 0, runtime.manifest.headDim])

/**
 * The policy's update on tagged rows (`residentStep`, `residentStaticStep`): the memory `mem`
 * (metadata; its K/V are not read) with this step's prefix appended as tag rows — row t of every
 * head carries t in its first value — so the rows the policy keeps name themselves. Keys are the
 * tags too unless the policy reads them (`realKeys`: per layer `[Hkv, T, Dh]`, the real rows).
 * @param T rows per head after the append (P + S)
 * @returns the new memory (metadata; `values` hold the kept tags, rows `width` wide; `headDim` the
 *   model's again) and the tag width
 * @throws StepkvError `memory_limit` (422) past `limits.maxMemoryTokens`; the policy's errors
 */
export function updateOnTags(policy: Policy, mem: SessionMemory, T: number, realKeys: Float32Array[] | undefined, prefix: PrefixMeta, info: StepInfo, limits: EngineLimits): { next: SessionMemory; width: number } {
  const width = tagWidth(policy, mem.headDim)
  const tags = taggedRows(mem.kvHeads, T, width)
  const tagged = appendPrefix({ ...mem, headDim: width }, mem.layers.map((_, l) => ({ key: realKeys?.[l] ?? tags, value: tags })), prefix)
  const next = { ...policy.update(tagged, info), headDim: mem.headDim }
  const over = memoryLimitError(next.tokens, limits)
  if (over) throw over
  return { next, width }
}

/**
 * The TempoFit policy's update of a device-resident bank, run on tag rows (`width` wide, 1 unless
 * the policy reads keys): bank row t carries t, this step's new row t carries M + t, so the rows of
 * the returned bank name which rows of [bank, new prefix] to keep.
 * @param bank the bank's metadata (M = bank.tokens rows per head)
 * @param S the step's new prefix rows
 * @returns the next bank (metadata; its values hold the tags, its headDim the model's) and the tag width
 * @throws StepkvError `memory_limit` (422) when the kept bank exceeds `limits.maxMemoryTokens`
 * @see TempoFit, arXiv:2603.07647
 */
export function updateTempoOnTags(policy: Policy, bank: SessionMemory, S: number, info: Omit<StepInfo, 'tempoPrefix'>, limits: EngineLimits): { next: SessionMemory; width: number } {
  const M = bank.tokens
  const T = M + S
  const width = tagWidth(policy, bank.headDim)
  const all = taggedRows(bank.kvHeads, T, width)
  const part = (from: number, n: number) => {
    const a = new Float32Array(bank.kvHeads * n * width)
    for (let h = 0; h < bank.kvHeads; h++) a.set(all.subarray((h * T + from) * width, (h * T + from + n) * width), h * n * width)
    return a
  }
  const [old, fresh] = [part(0, M), part(M, S)]
  const tagged = { ...bank, headDim: width, layers: bank.layers.map((l) => ({ ...l, keys: old, values: old })) }
  const next = { ...policy.update(tagged, { ...info, tempoPrefix: bank.layers.map(() => ({ key: fresh, value: fresh })) }), headDim: bank.headDim }
  const over = memoryLimitError(next.tokens, limits)
  if (over) throw over
  return { next, width }
}

/**
 * Width of the tag rows a policy runs on: `headDim` when it reads the keys (they come down real, and
 * keys and values share one width), else 1 — the rows it keeps are the same, and a tag row of one
 * float instead of Dh saves the policy its copies (on the 12 × 768 decoder, 30 ms of a 58 ms host
 * step went to copying Dh-wide tag rows).
 */
export function tagWidth(policy: Policy, headDim: number): number {
  return policy.readsKeys ? headDim : 1
}

/** `[Hkv, T, width]` with row t's first value = t (every other value 0). */
export function taggedRows(kvHeads: number, T: number, width: number): Float32Array {
  const a = new Float32Array(kvHeads * T * width)
  for (let h = 0; h < kvHeads; h++) for (let t = 0; t < T; t++) a[(h * T + t) * width] = t
  return a
}

/** Flat row ids (h·T + t) of the kept tagged rows (tags in `values`, rows `width` wide), or null
 * when every row is kept in order. */
function keptRows(values: Float32Array, kvHeads: number, K: number, T: number, width: number): Int32Array | null {
  const rows = new Int32Array(kvHeads * K)
  let identity = K === T
  for (let h = 0; h < kvHeads; h++)
    for (let k = 0; k < K; k++) {
      const t = values[(h * K + k) * width]
      if (t !== k) identity = false
      rows[h * K + k] = h * T + t
    }
  return identity ? null : rows
}

/**
 * Fixed capacity: flat row ids into `present` `[Hkv, C + S]` of the K kept tagged rows (tags in
 * `values`, rows `width` wide; tag t < P: past row t; t ≥ P: new row C + t − P), each head padded
 * to `capacity` rows with its last kept row (a finite value; the next step masks it out).
 */
export function slotRows(values: Float32Array, kvHeads: number, K: number, P: number, C: number, S: number, capacity: number, width: number): Int32Array {
  const rows = new Int32Array(kvHeads * capacity)
  const T = C + S // S: the new rows `present` has per head (padding rows included)
  for (let h = 0; h < kvHeads; h++) {
    let last = h * T
    for (let k = 0; k < capacity; k++) {
      if (k < K) {
        const t = values[(h * K + k) * width]
        last = h * T + (t < P ? t : C + t - P)
      }
      rows[h * capacity + k] = last
    }
  }
  return rows
}


export function identityRows(kvHeads: number, T: number): Int32Array {
  return Int32Array.from({ length: kvHeads * T }, (_, i) => i)
}

/** Flat row ids h·T + t of `[Hkv, T]` rows as ids into the concat gather's `[Hkv, 2T]` rows when a
 * tensor is appended to itself (h·2T + t: the first copy), so the concat variant reads one tensor. */
export function inFirstCopy(rows: Int32Array, T: number): Int32Array {
  return rows.map((id) => id + Math.floor(id / T) * T)
}

export function stripKv(mem: SessionMemory): SessionMemory {
  return { ...mem, layers: mem.layers.map((l) => ({ ...l, keys: new Float32Array(0), values: new Float32Array(0) })) }
}
