/**
 * @module A small ONNX graph that gathers kept KV rows on the device where they live: the pruning
 * step of a device-resident memory (`gpu/resident.ts`) without a round trip through the host.
 * Per layer l: `kv.{l}.key|value` `[1, Hkv, T, Dh]` and `rows.{l}` int32 `[Hkv·K]` (flat row ids
 * h·T + t, per head in kept order) → `kept.{l}.key|value` `[1, Hkv, K, Dh]`. The `concat` variant
 * (a device-resident TempoFit bank) first appends `added.{l}.key|value` `[1, Hkv, S, Dh]` to each
 * head's rows, so T = M + S and row ids index the grown bank. The `half` variants (a float16 session
 * kept on the device) round every kept value to float16 and back (`Cast` → float16 → float32, round
 * to nearest even, as `memory/storage.ts` `roundTrip`), so the device holds what a reload of the
 * stored blob gives.
 */
import { attr, GraphBuilder } from '../models/onnx/builder.ts'
import { NumericError } from '../memory/errors.ts'

/** Geometry the gather graph is built for (one graph per model). */
export interface GatherShape {
  layers: number
  kvHeads: number
  headDim: number
  /** Append `added.{l}.*` to `kv.{l}.*` along the token axis before gathering. Default false. */
  concat?: boolean
  /** Round the kept rows to float16 (`roundToHalf`) and add the output `kv_absmax` (scalar: the
   * largest |x| of every kept row before rounding; ≥ `HALF_OVERFLOW` means one overflows float16). */
  half?: boolean
}

/** |x| at and above which float16's round to nearest even gives ±∞ (65504 + half a step). */
export const HALF_OVERFLOW = 65520

/** ONNX `Cast` targets (TensorProto data types). */
const FLOAT16 = 10
const FLOAT = 1

/** x rounded to float16 and back to float32 (two `Cast` nodes: ORT rounds to nearest even). */
function roundToHalf(g: GraphBuilder, x: string): string {
  return g.op('Cast', [g.op('Cast', [x], { to: attr.int(FLOAT16) })], { to: attr.int(FLOAT) })
}

/** Name of the `half` gather's scalar output: max |x| over the kept rows before rounding. */
export const KV_ABSMAX = 'kv_absmax'

/**
 * The float16 overflow check of a device-kept float16 memory: refuses the step as `roundTrip`'s
 * `halfBits` does on the host (the caller still holds the previous memory).
 * @param absmax the graph's `kv_absmax` (NaN when a kept value is NaN, where the backend propagates it)
 * @throws NumericError when a kept value does not fit float16 (|x| ≥ 65520) or is not a number
 */
export function checkHalfAbsMax(absmax: number): void {
  if (!(absmax < HALF_OVERFLOW)) throw new NumericError(`a kept K/V value (|x| = ${absmax}) does not fit float16 (max 65504)`)
}

/** Input and output names of layer `l`'s part. */
export const gatherNames = (l: number, part: 'key' | 'value') => ({ input: `kv.${l}.${part}`, added: `added.${l}.${part}`, rows: `rows.${l}`, output: `kept.${l}.${part}` })

/**
 * Builds the gather graph (opset 17: [Concat axis 2 →] Reshape → Gather axis 0 → Reshape).
 * @returns the .onnx bytes
 * @throws RangeError for a geometry that is not positive integers
 */
export function buildKvGather({ layers, kvHeads, headDim, concat = false, half = false }: GatherShape): Uint8Array {
  for (const [k, v] of Object.entries({ layers, kvHeads, headDim }))
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be an integer ≥ 1, got ${v}`)
  const g = new GraphBuilder(half ? 'stepkv_kv_gather_half' : 'stepkv_kv_gather')
  const flat = g.int64([-1, headDim])
  const back = g.int64([1, kvHeads, -1, headDim])
  const maxima: string[] = []
  for (let l = 0; l < layers; l++) {
    const rows = g.input(`rows.${l}`, 'int32', ['kept_rows'])
    for (const part of ['key', 'value'] as const) {
      const n = gatherNames(l, part)
      let input = g.input(n.input, 'float32', [1, kvHeads, concat ? 'bank' : 'total', headDim])
      if (concat) input = g.op('Concat', [input, g.input(n.added, 'float32', [1, kvHeads, 'added', headDim])], { axis: attr.int(2) })
      const r = g.op('Reshape', [input, flat])
      let picked = g.op('Gather', [r, rows], { axis: attr.int(0) })
      if (half) {
        maxima.push(g.op('ReduceMax', [g.op('Abs', [picked])], { keepdims: attr.int(1) })) // [1, 1]
        picked = roundToHalf(g, picked)
      }
      // named directly (no Identity: ORT's WebGPU EP has none, it would run on the CPU EP)
      g.outputDirect(n.output, 'float32', [1, kvHeads, 'kept', headDim], g.op('Reshape', [picked, back]))
    }
  }
  // (ORT's WebGPU EP has no variadic Max: a Concat of the [1, 1] maxima, then one more ReduceMax)
  if (half) g.outputDirect(KV_ABSMAX, 'float32', [], g.op('ReduceMax', [g.op('Concat', maxima, { axis: attr.int(0) })], { keepdims: attr.int(0) }))
  return g.toBytes()
}

/** Geometry of the slot gather: the model's, `total` rows per head in (C + S), `capacity` slots out;
 * with `added`, the input is `kv` (total − added rows) with `added.{l}` (added rows) appended. */
export interface SlotGatherShape {
  layers: number
  kvHeads: number
  headDim: number
  total: number
  capacity: number
  added?: number
  /** Round the kept rows to float16 and back (`GatherShape.half`; no `kv_absmax` here: the captured
   * step checks the new rows before it writes, from the step graph's own `kv_absmax`). */
  half?: boolean
}

/**
 * Builds the slot gather of a captured step (`gpu/static-step.ts`), every dim fixed (opset 17): per
 * layer l, `kv.{l}.key|value` `[1, Hkv, total, Dh]` and `rows.{l}` int64 `[1, Hkv, capacity, 1]`
 * (per head, the row t < total each slot takes) → `kept.{l}.key|value` `[1, Hkv, capacity, Dh]`, by
 * one GatherND with `batch_dims` 2. With `added` (a TempoFit bank: the step's new rows appended to
 * the bank's slots), `kv.{l}.*` has total − added rows and `added.{l}.*` the rest, concatenated
 * first. No Reshape: WebGPU graph capture records compute dispatches only, and a Reshape into a
 * bound output is a buffer copy that replays would skip.
 * @returns the .onnx bytes
 * @throws RangeError for a geometry that is not positive integers
 */
export function buildSlotGather({ layers, kvHeads, headDim, total, capacity, added, half = false }: SlotGatherShape): Uint8Array {
  for (const [k, v] of Object.entries({ layers, kvHeads, headDim, total, capacity }))
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be an integer ≥ 1, got ${v}`)
  if (added !== undefined && !(Number.isInteger(added) && added >= 1 && added < total)) throw new RangeError(`added must be an integer in 1…${total - 1}, got ${added}`)
  const g = new GraphBuilder(added ? 'stepkv_slot_gather_concat' : 'stepkv_slot_gather')
  for (let l = 0; l < layers; l++) {
    const rows = g.input(`rows.${l}`, 'int64', [1, kvHeads, capacity, 1])
    for (const part of ['key', 'value'] as const) {
      const n = gatherNames(l, part)
      let input = g.input(n.input, 'float32', [1, kvHeads, total - (added ?? 0), headDim])
      if (added) input = g.op('Concat', [input, g.input(n.added, 'float32', [1, kvHeads, added, headDim])], { axis: attr.int(2) })
      const picked = g.op('GatherND', [input, rows], { batch_dims: attr.int(2) })
      g.outputDirect(n.output, 'float32', [1, kvHeads, capacity, headDim], half ? roundToHalf(g, picked) : picked)
    }
  }
  return g.toBytes()
}

/**
 * The slot gather's row ids from flat ids (`slotRows`: h·total + t, `[Hkv·capacity]`): per head the
 * row t, as int64 little-endian words (low word t, high word 0) in an Int32Array of 2·Hkv·capacity,
 * so no BigInt is made per row. @param into reused output (length 2·flat.length)
 * @throws RangeError when a flat id is outside its head's rows
 */
export function slotIds(flat: ArrayLike<number>, kvHeads: number, total: number, into: Int32Array = new Int32Array(2 * flat.length)): Int32Array {
  const per = flat.length / kvHeads
  for (let i = 0; i < flat.length; i++) {
    const t = flat[i] - Math.floor(i / per) * total
    if (t < 0 || t >= total) throw new RangeError(`row id ${flat[i]} at ${i} is outside head ${Math.floor(i / per)}'s ${total} rows`)
    into[2 * i] = t
    into[2 * i + 1] = 0
  }
  return into
}

