/**
 * @module Pure operations on a `SessionMemory`: create, append a prefilled prefix, size and
 * summary; re-exports `gatherTokens` (gather.ts) and the model checks (model-check.ts), so this
 * is the one import for memory operations. No I/O; nothing mutates its input.
 */
import { FeedError, ModelMismatchError, NumericError, SeqConflictError } from './errors.ts'
import type { MemoryShape } from './model-check.ts'
import type { LayerMemory, SessionMemory } from './types.ts'
import { firstNonFinite, firstNonFiniteNewRows, isCount, isTokenKindCode } from './validate.ts'

export { gatherTokens } from './gather.ts'
export {
  checkMemoryAgainstModel,
  checkModelShape,
  type MemoryShape,
  type ModelRef,
  type StoredShape,
} from './model-check.ts'

/** One layer's `present.{l}.key|value` for batch 1: Float32Array `[kvHeads, P+S, headDim]`. */
export interface PresentKV {
  key: Float32Array
  value: Float32Array
}

/**
 * The step's prefix metadata: `seq` of the step; `positions` Int32Array `[S]`, the absolute
 * `position_ids` the S new tokens were prefilled at; `kinds` Uint8Array `[S]`, `TokenKind` codes.
 */
export interface PrefixMeta {
  seq: number
  positions: Int32Array
  kinds: Uint8Array
}

/** What a reply reports about a memory. */
export interface MemorySummary {
  tokensPerLayer: number[]
  nextPosition: number
  seq: number
}

/**
 * A memory with no tokens (tokens 0, nextPosition 0, seq 0; zero-length arrays).
 * @param shape model and geometry; layers, kvHeads, headDim integers ≥ 1. With `layerIds` (e.g.
 *   a TempoFit bank of model layers `[1, 2]`), `layers` is the model's layer count and the memory
 *   stores one layer per id, with `layerIds` set; without, it stores all `layers`.
 * @throws RangeError if a geometry number is not an integer ≥ 1, or `layerIds` is not strictly
 *   increasing within `[0, layers)`
 */
export function emptyMemory({
  model,
  layers,
  kvHeads,
  headDim,
  layerIds,
}: MemoryShape): SessionMemory {
  for (const [name, value] of Object.entries({ layers, kvHeads, headDim })) {
    if (!isCount(value, 1)) throw new RangeError(`${name} must be an integer ≥ 1, got ${value}`)
  }
  const ids = layerIds && [...layerIds]
  if (
    ids &&
    (ids.length < 1 || ids.some((id, i) => !isCount(id) || id >= layers || id <= ids[i - 1]))
  ) {
    throw new RangeError(`layerIds [${ids}] must ascend strictly within [0, ${layers})`)
  }
  const layer = (): LayerMemory => ({
    keys: new Float32Array(0),
    values: new Float32Array(0),
    positions: new Int32Array(0),
    frames: new Int32Array(0),
    kinds: new Uint8Array(0),
  })
  const empty = Array.from({ length: ids ? ids.length : layers }, layer)
  return {
    model: { ...model },
    layers: empty,
    kvHeads,
    headDim,
    tokens: 0,
    nextPosition: 0,
    seq: 0,
    ...(ids && { layerIds: ids }),
  }
}

function checkPrefix(mem: SessionMemory, prefix: PrefixMeta): void {
  const { seq, positions, kinds } = prefix
  if (!isCount(seq, 1) || seq <= mem.seq) {
    throw new SeqConflictError(`prefix seq ${seq} must be an integer > the memory's seq ${mem.seq}`)
  }
  if (!(positions instanceof Int32Array) || !(kinds instanceof Uint8Array)) {
    throw new TypeError('prefix positions must be an Int32Array and kinds a Uint8Array')
  }
  if (kinds.length !== positions.length) {
    throw new FeedError(`prefix has ${positions.length} positions but ${kinds.length} kinds`)
  }
  let previous = mem.nextPosition - 1
  for (let i = 0; i < positions.length; i++) {
    if (positions[i] <= previous) {
      const after =
        i === 0 ? `nextPosition ${mem.nextPosition}` : `positions[${i - 1}] = ${previous}`
      throw new FeedError(
        `positions must increase strictly from ${after}; positions[${i}] = ${positions[i]}`,
      )
    }
    if (!isTokenKindCode(kinds[i])) {
      throw new FeedError(`kinds[${i}] = ${kinds[i]} is not a TokenKind code (optionally PINNED)`)
    }
    previous = positions[i]
  }
}

function checkPresent(mem: SessionMemory, present: readonly PresentKV[], newTokens: number, newRowsOnly = false): void {
  const { kvHeads, headDim, tokens } = mem
  if (present.length !== mem.layers.length) {
    throw new ModelMismatchError(
      `present has ${present.length} layers, memory has ${mem.layers.length}`,
    )
  }
  const expected = kvHeads * (tokens + newTokens) * headDim
  for (let l = 0; l < present.length; l++) {
    for (const part of ['key', 'value'] as const) {
      const data = present[l][part]
      const name = `present.${l}.${part}`
      if (!(data instanceof Float32Array)) throw new ModelMismatchError(`${name} must be float32`)
      if (data.length !== expected) {
        throw new ModelMismatchError(
          `${name} has ${data.length} values, expected ${expected} = [kvHeads ${kvHeads}, tokens ${tokens}+${newTokens}, headDim ${headDim}]`,
          { layer: l, expected, actual: data.length },
        )
      }
      const bad = newRowsOnly ? firstNonFiniteNewRows(data, kvHeads, tokens, newTokens, headDim) : firstNonFinite(data)
      if (bad >= 0) {
        const row = Math.floor(bad / headDim)
        const [head, token] = [Math.floor(row / (tokens + newTokens)), row % (tokens + newTokens)]
        throw new NumericError(`${name} is ${data[bad]} at head ${head}, token ${token}`, {
          layer: l,
          head,
          token,
        })
      }
    }
  }
}

/** How `appendPrefix` takes `present`. */
export interface AppendOptions {
  /**
   * Hand `present`'s arrays over as the new memory's K/V instead of copying them, and check only
   * the S new rows per head for NaN/±Inf (the P carried rows entered finite). For a caller that
   * owns fresh model outputs and never touches them again (`runStep`: ORT's host copies). Saves
   * O(P + S) per step: 4.3–4.6 ms copied and scanned, 0.1 ms adopted, at 6,143 tokens × 4 layers ×
   * 2 KV heads × 32 dims (the GUI model's full cache at T = 64).
   * Default false: copied and scanned whole, so the caller may reuse its buffers.
   */
  adopt?: boolean
}

/**
 * Append a prefilled prefix: the model ran S new tokens against the P carried ones.
 * @param mem the carried memory (P = `mem.tokens`)
 * @param present per layer `{ key, value }` Float32Array `[kvHeads, P+S, headDim]`, as ORT returns
 *   `present.{l}.key|value` for batch 1; the first P rows per head are the carried ones (assumed,
 *   not compared). Copied, so the caller may reuse the buffers, unless `options.adopt`.
 * @param options `adopt`: take the arrays without copying (each must be a distinct array)
 * @param prefix `seq` (> mem.seq) and the S new tokens' `positions` (strictly increasing,
 *   first ≥ mem.nextPosition) and `kinds`; metadata is repeated for every head
 * @returns a new memory of P+S tokens, `seq` = prefix.seq, `nextPosition` = last position + 1
 *   (unchanged when S = 0); carried `scores` `[kvHeads, P+S]` (when the memory has them) get 0 for
 *   the new tokens
 * @throws SeqConflictError if prefix.seq ≤ mem.seq; FeedError for bad positions/kinds;
 *   ModelMismatchError naming the layer and expected vs actual length; NumericError on NaN/±Inf
 *   (never stored; with `adopt`, in the new rows); TypeError for wrong array types, or arrays
 *   sharing an ArrayBuffer under `adopt`
 */
export function appendPrefix(
  mem: SessionMemory,
  present: readonly PresentKV[],
  prefix: PrefixMeta,
  options: AppendOptions = {},
): SessionMemory {
  checkPrefix(mem, prefix)
  const newTokens = prefix.positions.length
  const adopt = options.adopt === true
  checkPresent(mem, present, newTokens, adopt)
  if (adopt) {
    const arrays = present.flatMap((p) => [p.key, p.value])
    if (new Set(arrays.map((a) => a.buffer)).size !== arrays.length)
      throw new TypeError('appendPrefix with adopt: every present key and value must have an ArrayBuffer of its own')
  }
  const { kvHeads, tokens } = mem
  const total = tokens + newTokens
  const layers = mem.layers.map((old, l): LayerMemory => {
    const layer: LayerMemory = {
      keys: adopt ? present[l].key : present[l].key.slice(),
      values: adopt ? present[l].value : present[l].value.slice(),
      positions: new Int32Array(kvHeads * total),
      frames: new Int32Array(kvHeads * total),
      kinds: new Uint8Array(kvHeads * total),
    }
    for (let h = 0; h < kvHeads; h++) {
      const [from, to] = [h * tokens, h * total]
      layer.positions.set(old.positions.subarray(from, from + tokens), to)
      layer.positions.set(prefix.positions, to + tokens)
      layer.frames.set(old.frames.subarray(from, from + tokens), to)
      layer.frames.fill(prefix.seq, to + tokens, to + total)
      layer.kinds.set(old.kinds.subarray(from, from + tokens), to)
      layer.kinds.set(prefix.kinds, to + tokens)
    }
    if (old.scores) {
      layer.scores = new Float32Array(kvHeads * total)
      for (let h = 0; h < kvHeads; h++) {
        layer.scores.set(old.scores.subarray(h * tokens, (h + 1) * tokens), h * total)
      }
    }
    return layer
  })
  const nextPosition = newTokens > 0 ? prefix.positions[newTokens - 1] + 1 : mem.nextPosition
  return { ...mem, layers, tokens: total, nextPosition, seq: prefix.seq }
}

/** Bytes held by a memory's tensors: K/V float32, positions, frames (int32), kinds (uint8) and
 * carried scores (float32) when present. */
export function memoryBytes(mem: SessionMemory): number {
  let bytes = 0
  for (const { keys, values, positions, frames, kinds, scores } of mem.layers) {
    bytes += keys.byteLength + values.byteLength + positions.byteLength
    bytes += frames.byteLength + kinds.byteLength + (scores?.byteLength ?? 0)
  }
  return bytes
}

/** Tokens per layer (all equal), nextPosition and seq, as a step reply reports them. */
export function summary(mem: SessionMemory): MemorySummary {
  return {
    tokensPerLayer: mem.layers.map(() => mem.tokens),
    nextPosition: mem.nextPosition,
    seq: mem.seq,
  }
}

/**
 * Per head, the rows of `old` `[kvHeads, P, d]` followed by the rows of `added` `[kvHeads, S, d]`:
 * a new Float32Array `[kvHeads, P + S, d]` (a TempoFit bank growing by a frame, a device-resident
 * memory's past plus this step's new rows).
 */
export function concatRows(old: Float32Array, added: Float32Array, kvHeads: number, P: number, S: number, d: number): Float32Array {
  const out = new Float32Array(kvHeads * (P + S) * d)
  for (let h = 0; h < kvHeads; h++) {
    out.set(old.subarray(h * P * d, (h + 1) * P * d), h * (P + S) * d)
    out.set(added.subarray(h * S * d, (h + 1) * S * d), (h * (P + S) + P) * d)
  }
  return out
}

/** `x [heads, rows, d]` laid out as `[heads, slots, d]` (slots ≥ rows), the extra rows `fill`;
 * `x` itself when slots = rows (the inverse of `realRows` with S = 0). */
export function padRows(x: Float32Array, heads: number, rows: number, slots: number, d: number, fill = 0): Float32Array {
  if (slots === rows) return x
  const out = new Float32Array(heads * slots * d)
  for (let h = 0; h < heads; h++) {
    out.set(x.subarray(h * rows * d, (h + 1) * rows * d), h * slots * d)
    if (fill !== 0) out.fill(fill, (h * slots + rows) * d, (h + 1) * slots * d)
  }
  return out
}

/**
 * `[Hkv, C + rows, width]` → `[Hkv, P + S, width]`: each head's P real past rows and its first S new
 * rows (the fixed-capacity padding rows P … C − 1 dropped, and the padding query rows S … rows − 1
 * of a padded prefix; with C = P and rows = S the input itself). Width Dh for `present` keys, 1 for
 * `attn_window` / `attn_total` columns. Used by the Worker's fixed step layout
 * (`worker/engine.ts`) and by the GPU host's fixed-capacity layouts (`gpu/resident.ts`,
 * `gpu/static-step.ts`).
 */
export function realRows(a: Float32Array, kvHeads: number, P: number, C: number, S: number, width: number, rows = S): Float32Array {
  if (C === P && rows === S) return a
  const out = new Float32Array(kvHeads * (P + S) * width)
  for (let h = 0; h < kvHeads; h++) {
    const from = h * (C + rows) * width
    out.set(a.subarray(from, from + P * width), h * (P + S) * width)
    out.set(a.subarray(from + C * width, from + (C + S) * width), (h * (P + S) + P) * width)
  }
  return out
}
