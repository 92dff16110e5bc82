/**
 * @module A small ONNX graph that gathers kept KV rows on the device where they live: the pruning
 * step of a device-resident memory (`gpu/resident.ts`) without a round trip through the host.
 * Per layer l: `kv.{l}.key|value` `[1, Hkv, T, Dh]` and `rows.{l}` int32 `[Hkv·K]` (flat row ids
 * h·T + t, per head in kept order) → `kept.{l}.key|value` `[1, Hkv, K, Dh]`. The `concat` variant
 * (a device-resident TempoFit bank; a KIVI memory's uploaded rows) first appends `added.{l}.key|value` `[1, Hkv, S, Dh]` to each
 * head's rows, so T = M + S and row ids index the grown bank. The `half` variants (a float16 session
 * kept on the device) round every kept value to the nearest float16 value, ties to even, as
 * `memory/storage.ts` `roundTrip` does (`roundToHalf`: float32 arithmetic, no float16 kernel), so the
 * device holds what a reload of the stored blob gives.
 */
import { absMaxOf, attr, GraphBuilder, maxAll, NAN_ABSMAX } from '../models/onnx/builder.ts'
import type { InferenceSession } from 'onnxruntime-web'
import { NumericError } from '../memory/errors.ts'
import { f16BitsToF32, f32ToF16Bits } from '../memory/float16.ts'
import type { Ort } from './ort-node.ts'

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

/** `roundToHalf`'s two tables, made once per graph. */
const halfTables = new WeakMap<GraphBuilder, { pow2: string; magic: string }>()

/** ONNX `Cast` targets (TensorProto data types). */
const FLOAT = 1
const INT32 = 6

/**
 * x (float32, any shape) rounded to the nearest float16 value, ties to even, kept as float32: in
 * float32 arithmetic, no float16 kernel (ORT's WebGPU EP needs the device's `shader-f16` for a
 * float16 `Cast`, which Dawn on the H200 does not offer; there a Cast to float16 gave zeros). A
 * float16 value in binade e (2^e ≤ |y| < 2^(e+1), e clamped to −14 … 15: below 2^−14 the subnormal
 * spacing 2^−24 of binade −14 holds) is a multiple of 2^(e−10); adding c = 1.5 · 2^(e+13), whose
 * float32 spacing is exactly 2^(e−10), rounds x to such a multiple with float32's own round to
 * nearest even (c is an even multiple of its spacing, so ties keep x's parity), and subtracting c
 * again is exact. e comes from log(|x|) / ln 2, floored, then corrected once each way against the
 * exact power 2^e from a table (the log may miss by one at a power of two). |x| ≥ 65520, which
 * float16 rounds to ∞, comes out as a multiple of 32 of at least 65536 (not a float16 value): the
 * callers refuse it (`kv_absmax`). A zero result is +0 where float16 would keep −0 (ORT's CPU
 * `Where` drops the sign of a −0 it selects, so no cheap fix; no sum, product or softmax sees the
 * difference): results are compared with `===`, value for value. Checked against the codec's
 * rounding on wasm (`test/gpu/kv-gather.test.ts`), on the H200 (`bench/gpu.ts half`), and by the
 * GPU host at start-up (`checkHalfRounding`).
 */
function roundToHalf(g: GraphBuilder, x: string): string {
  const EMIN = -14
  const EMAX = 15
  let t = halfTables.get(g)
  if (!t) {
    const table = (f: (e: number) => number) => g.initializer('half_table', { dtype: 'float32', dims: [EMAX - EMIN + 1], data: Float32Array.from({ length: EMAX - EMIN + 1 }, (_, i) => f(i + EMIN)) })
    halfTables.set(g, (t = { pow2: table((e) => 2 ** e), magic: table((e) => 1.5 * 2 ** (e + 13)) }))
  }
  const { pow2, magic } = t
  const f = (v: number) => g.float32(v)
  const clampE = (e: string) => g.op('Clip', [e, f(EMIN), f(EMAX)])
  const index = (e: string) => g.op('Cast', [g.op('Sub', [e, f(EMIN)])], { to: attr.int(INT32) })
  const a = g.op('Abs', [x])
  const log2 = g.op('Mul', [g.op('Log', [g.op('Clip', [a, f(2 ** -30)])]), f(1 / Math.LN2)])
  const e0 = clampE(g.op('Floor', [log2]))
  const p = g.op('Gather', [pow2, index(e0)], { axis: attr.int(0) }) // 2^e0, exact
  const down = g.op('Cast', [g.op('Less', [a, p])], { to: attr.int(FLOAT) })
  const up = g.op('Cast', [g.op('GreaterOrEqual', [a, g.op('Mul', [p, f(2)])])], { to: attr.int(FLOAT) })
  const e = clampE(g.op('Add', [g.op('Sub', [e0, down]), up]))
  const c = g.op('Gather', [magic, index(e)], { axis: attr.int(0) })
  return g.op('Sub', [g.op('Add', [x, c]), c])
}

/** Name of the `half` gather's scalar output: max |x| over the kept rows before rounding. */
export const KV_ABSMAX = 'kv_absmax'

/**
 * The float16 overflow check of a device-kept float16 memory: refuses the step as `roundTrip`'s
 * `halfBits` does on the host (the caller still holds the previous memory).
 * @param absmax the graph's `kv_absmax` (`NAN_ABSMAX` or more when a kept value is NaN or ±∞)
 * @throws NumericError when a kept value is NaN or does not fit float16 (|x| ≥ 65520)
 */
export function checkHalfAbsMax(absmax: number): void {
  if (!(absmax < NAN_ABSMAX)) throw new NumericError('a kept K/V value is NaN or infinite; float16 storage keeps finite values')
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
        maxima.push(absMaxOf(g, picked)) // [1]
        picked = roundToHalf(g, picked)
      }
      // named directly (no Identity: ORT's WebGPU EP has none, it would run on the CPU EP)
      g.outputDirect(n.output, 'float32', [1, kvHeads, 'kept', headDim], g.op('Reshape', [picked, back]))
    }
  }
  if (half) g.outputDirect(KV_ABSMAX, 'float32', [], maxAll(g, maxima))
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

/** What `checkHalfRounding` found: probe values, mismatches (the first few), `kv_absmax` vs the
 * probes' max |x|. */
export interface HalfRoundingCheck {
  ok: boolean
  values: number
  mismatches: number
  first: { i: number; x: number; got: number; want: number }[]
  absmax: number
  absmaxWant: number
  /** A second run with one NaN among the probes gave `kv_absmax` ≥ `NAN_ABSMAX` (refused). */
  nanFlagged: boolean
}

/**
 * Runs the `half` gather once on an ORT build and execution provider, in the shape of a 12-layer
 * model (24 K/V tensors, so `kv_absmax` takes its full Concat tree), and compares it with the codec
 * (`memory/float16.ts`, round to nearest even) on 98,304 probe values: exact ties, subnormals,
 * ±65504 and magnitudes from 1e-4 to 1e5 (`===`: a zero's sign aside); every kept row but one
 * value beyond float16 (−70000), `kv_absmax` against the probes' max |x| (70000), and a second run
 * with one NaN among the probes, whose `kv_absmax` must say NaN. The GPU host keeps float16 sessions on the device only
 * where this holds (`HostSessions.prepare`).
 * @param ort the ORT module (`onnxruntime-web/all` for WebGPU)
 * @returns the comparison
 * @throws Error when ORT refuses the graph or the run
 */
export async function checkHalfRounding(ort: Ort, executionProviders: string[]): Promise<HalfRoundingCheck> {
  let seed = 77
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32)
  const fixed = [1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), 2 ** -24 * 1.5, 2 ** -25, 3e-6, 65504, -65519, 0, 1024.5, 2049, 0.1, -0.3, 2 ** -14, -(2 ** -15), -70000]
  const [L, Dh] = [12, 4096]
  const n = 2 * L * Dh
  const probe = Float32Array.from({ length: n }, (_, i) => (i < fixed.length ? fixed[i] : (rand() - 0.5) * 10 ** (rand() * 9 - 4)))
  const session = await ort.InferenceSession.create(buildKvGather({ layers: L, kvHeads: 1, headDim: Dh, half: true }), { executionProviders } as InferenceSession.SessionOptions)
  try {
    const feeds: Record<string, InstanceType<Ort['Tensor']>> = {}
    for (let l = 0; l < L; l++) {
      feeds[`rows.${l}`] = new ort.Tensor('int32', Int32Array.of(0), [1])
      for (const [j, part] of (['key', 'value'] as const).entries()) feeds[gatherNames(l, part).input] = new ort.Tensor('float32', probe.slice((2 * l + j) * Dh, (2 * l + j + 1) * Dh), [1, 1, 1, Dh])
    }
    const out = await session.run(feeds)
    const want = f16BitsToF32(f32ToF16Bits(probe))
    const first: HalfRoundingCheck['first'] = []
    let mismatches = 0
    for (let l = 0; l < L; l++)
      for (const [j, part] of (['key', 'value'] as const).entries()) {
        const got = out[gatherNames(l, part).output].data as Float32Array
        for (let d = 0; d < Dh; d++) {
          const i = (2 * l + j) * Dh + d
          if (Math.abs(probe[i]) >= HALF_OVERFLOW) continue // float16 ∞: refused by kv_absmax, not stored
          if (got[d] !== want[i] && mismatches++ < 8) first.push({ i, x: probe[i], got: got[d], want: want[i] })
        }
      }
    const absmax = (out[KV_ABSMAX].data as Float32Array)[0]
    const absmaxWant = probe.reduce((a, x) => Math.max(a, Math.abs(x)), 0)
    // the last tensor again with one NaN: the device's reductions must not drop it
    const last = gatherNames(L - 1, 'value').input
    const poisoned = (feeds[last].data as Float32Array).slice()
    poisoned[Dh >> 1] = NaN
    const nanOut = await session.run({ ...feeds, [last]: new ort.Tensor('float32', poisoned, [1, 1, 1, Dh]) })
    const nanFlagged = !((nanOut[KV_ABSMAX].data as Float32Array)[0] < NAN_ABSMAX)
    return { ok: mismatches === 0 && absmax === absmaxWant && nanFlagged, values: n, mismatches, first, absmax, absmaxWant, nanFlagged }
  } finally {
    await session.release()
  }
}

