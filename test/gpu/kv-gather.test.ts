/**
 * The device gather graphs (`gpu/kv-gather.ts`) run on wasm against a plain-loop gather of the same
 * rows: the dynamic gather (int32 flat row ids, with and without the concat variant) that the
 * resident path runs, and the slot gather (GatherND, every dim fixed) that a captured step replays
 * to write the kept rows of `present` into its past slots. Both only copy rows, so the outputs must
 * equal the reference exactly. Their `half` variants (a float16 session kept on the device) round
 * the kept rows to float16 and back: checked value for value (`===`: a zero's sign aside) against
 * the codec's float16 rounding (`memory/float16.ts`, a separate implementation), ties and
 * subnormals included, with the `kv_absmax` overflow check.
 */
import { describe, expect, it } from 'vitest'
import type { Tensor } from 'onnxruntime-web'
import { buildKvGather, buildSlotGather, checkHalfAbsMax, checkHalfRounding, gatherNames, HALF_OVERFLOW, KV_ABSMAX, slotIds } from '../../gpu/kv-gather.ts'
import { f16BitsToF32, f32ToF16Bits } from '../../memory/float16.ts'
import { NumericError } from '../../memory/errors.ts'
import { slotRows } from '../../gpu/resident.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { mulberry32 } from '../../models/decoder/weights.ts'
import { modelProtoType } from '../../models/onnx/proto.ts'
import { NAN_ABSMAX } from '../../models/onnx/builder.ts'

const ort = ortForNode()

/** `[Hkv, T, Dh]` rows with distinct values (row r of head h holds h·1000 + r + d/100). */
function rowsOf(Hkv: number, T: number, Dh: number, offset = 0): Float32Array {
  const a = new Float32Array(Hkv * T * Dh)
  for (let h = 0; h < Hkv; h++) for (let t = 0; t < T; t++) for (let d = 0; d < Dh; d++) a[(h * T + t) * Dh + d] = h * 1000 + offset + t + d / 100
  return a
}

/** Reference: per head h and kept k, the row `flat[h·K + k] − h·T` of head h. */
function gatherRef(src: Float32Array, Hkv: number, T: number, Dh: number, flat: ArrayLike<number>): Float32Array {
  const K = flat.length / Hkv
  const out = new Float32Array(Hkv * K * Dh)
  for (let h = 0; h < Hkv; h++)
    for (let k = 0; k < K; k++) {
      const r = flat[h * K + k]
      expect(Math.floor(r / T)).toBe(h) // a row of its own head
      out.set(src.subarray(r * Dh, (r + 1) * Dh), (h * K + k) * Dh)
    }
  return out
}

describe('dynamic gather (int32 row ids)', () => {
  it('keeps the named rows of each head, per layer; the concat variant appends the new rows first', async () => {
    const [L, Hkv, Dh, T, S] = [2, 2, 4, 7, 3]
    const rand = mulberry32(5)
    for (const concat of [false, true]) {
      const total = concat ? T + S : T
      const session = await ort.InferenceSession.create(buildKvGather({ layers: L, kvHeads: Hkv, headDim: Dh, concat }))
      const feeds: Record<string, Tensor> = {}
      const expected: Record<string, Float32Array> = {}
      for (let l = 0; l < L; l++) {
        const K = 5 // one kept count for every layer (the graph shares the symbolic dim)
        const flat = Int32Array.from({ length: Hkv * K }, (_, i) => Math.floor(i / K) * total + Math.floor(rand() * total))
        feeds[gatherNames(l, 'key').rows] = new ort.Tensor('int32', flat, [flat.length])
        for (const [j, part] of (['key', 'value'] as const).entries()) {
          const n = gatherNames(l, part)
          const base = rowsOf(Hkv, T, Dh, 100 * (2 * l + j))
          const added = rowsOf(Hkv, S, Dh, 500 + 100 * (2 * l + j))
          feeds[n.input] = new ort.Tensor('float32', base, [1, Hkv, T, Dh])
          if (concat) feeds[n.added] = new ort.Tensor('float32', added, [1, Hkv, S, Dh])
          // the grown rows per head: base then added
          const grown = new Float32Array(Hkv * total * Dh)
          for (let h = 0; h < Hkv; h++) {
            grown.set(base.subarray(h * T * Dh, (h + 1) * T * Dh), h * total * Dh)
            if (concat) grown.set(added.subarray(h * S * Dh, (h + 1) * S * Dh), (h * total + T) * Dh)
          }
          expected[n.output] = gatherRef(grown, Hkv, total, Dh, flat)
        }
      }
      const out = await session.run(feeds)
      for (const [n, e] of Object.entries(expected)) {
        expect(out[n].dims, n).toEqual([1, Hkv, e.length / (Hkv * Dh), Dh])
        expect(Array.from(out[n].data as Float32Array), `${n} concat=${concat}`).toEqual(Array.from(e))
      }
    }
  })
})

describe('slot gather (captured steps)', () => {
  it("writes each slot's row of present (C + S rows per head) as slotRows names it", async () => {
    const [L, Hkv, Dh, C, S] = [3, 2, 4, 8, 5]
    const T = C + S
    const session = await ort.InferenceSession.create(buildSlotGather({ layers: L, kvHeads: Hkv, headDim: Dh, total: T, capacity: C }))
    const feeds: Record<string, Tensor> = {}
    const expected: Record<string, Float32Array> = {}
    for (let l = 0; l < L; l++) {
      // a memory of P = 6 real rows; K = 6 + S − (l + 2) kept (tags: past 0…5, new 6…10), padded to C
      const P = 6
      const K = Math.min(C, P + S - (l + 2))
      const tags = new Float32Array(Hkv * K)
      for (let h = 0; h < Hkv; h++) for (let k = 0; k < K; k++) tags[h * K + k] = (k * (h + 2) + l) % (P + S) // distinct per head
      for (let h = 0; h < Hkv; h++) {
        const seen = Array.from(tags.subarray(h * K, (h + 1) * K)).sort((a, b) => a - b)
        tags.set(seen, h * K)
      }
      const flat = slotRows(tags, Hkv, K, P, C, S, C, 1)
      const ids = slotIds(flat, Hkv, T)
      feeds[`rows.${l}`] = new ort.Tensor('int64', new BigInt64Array(ids.buffer), [1, Hkv, C, 1])
      for (const [j, part] of (['key', 'value'] as const).entries()) {
        const n = gatherNames(l, part)
        const present = rowsOf(Hkv, T, Dh, 100 * (2 * l + j))
        feeds[n.input] = new ort.Tensor('float32', present, [1, Hkv, T, Dh])
        expected[n.output] = gatherRef(present, Hkv, T, Dh, flat)
        // the slots: tag t < P is present row t, t ≥ P is row C + t − P; past K, the last kept row repeats
        for (let h = 0; h < Hkv; h++)
          for (let k = 0; k < C; k++) {
            const t = tags[h * K + Math.min(k, K - 1)]
            expect(expected[n.output][(h * C + k) * Dh]).toBe(h * 1000 + 100 * (2 * l + j) + (t < P ? t : C + t - P))
          }
      }
    }
    const out = await session.run(feeds)
    for (const [n, e] of Object.entries(expected)) {
      expect(out[n].dims, n).toEqual([1, Hkv, C, Dh])
      expect(Array.from(out[n].data as Float32Array), n).toEqual(Array.from(e))
    }
  })

  it('concat variant (a TempoFit bank): the bank slots with the new rows appended, gathered into the slots', async () => {
    const [L, Hkv, Dh, Mc, S] = [2, 2, 4, 6, 3]
    const session = await ort.InferenceSession.create(buildSlotGather({ layers: L, kvHeads: Hkv, headDim: Dh, total: Mc + S, capacity: Mc, added: S }))
    const feeds: Record<string, Tensor> = {}
    const expected: Record<string, Float32Array> = {}
    for (let l = 0; l < L; l++) {
      // bank of M = 4 real rows in Mc = 6 slots; keep bank rows 2, 3 and the 3 new rows (FIFO)
      const [M, K] = [4, 5]
      const tags = new Float32Array(Hkv * K)
      for (let h = 0; h < Hkv; h++) tags.set([2, 3, M, M + 1, M + 2], h * K)
      const flat = slotRows(tags, Hkv, K, M, Mc, S, Mc, 1)
      feeds[`rows.${l}`] = new ort.Tensor('int64', new BigInt64Array(slotIds(flat, Hkv, Mc + S).buffer), [1, Hkv, Mc, 1])
      for (const [j, part] of (['key', 'value'] as const).entries()) {
        const n = gatherNames(l, part)
        const bank = rowsOf(Hkv, Mc, Dh, 100 * (2 * l + j))
        const added = rowsOf(Hkv, S, Dh, 500 + 100 * (2 * l + j))
        feeds[n.input] = new ort.Tensor('float32', bank, [1, Hkv, Mc, Dh])
        feeds[n.added] = new ort.Tensor('float32', added, [1, Hkv, S, Dh])
        const want = new Float32Array(Hkv * Mc * Dh)
        for (let h = 0; h < Hkv; h++)
          for (let k = 0; k < Mc; k++) {
            const t = tags[h * K + Math.min(k, K - 1)] // past K, the last kept row repeats
            const src = t < M ? bank.subarray((h * Mc + t) * Dh, (h * Mc + t + 1) * Dh) : added.subarray((h * S + t - M) * Dh, (h * S + t - M + 1) * Dh)
            want.set(src, (h * Mc + k) * Dh)
          }
        expected[n.output] = want
      }
    }
    const out = await session.run(feeds)
    for (const [n, e] of Object.entries(expected)) expect(Array.from(out[n].data as Float32Array), n).toEqual(Array.from(e))
    expect(() => buildSlotGather({ layers: 1, kvHeads: 1, headDim: 4, total: 4, capacity: 2, added: 4 })).toThrow(RangeError)
  })

  it('capture-safe: fixed dims, every output written by the GatherND itself (no Reshape or Identity copy)', () => {
    const t = modelProtoType()
    const g = (t.toObject(t.decode(buildSlotGather({ layers: 2, kvHeads: 2, headDim: 4, total: 12, capacity: 8 }))) as {
      graph: { node: { op_type: string; output: string[] }[]; input: { type: { tensor_type: { shape: { dim: { dim_value?: number; dim_param?: string }[] } } } }[]; output: { name: string }[] }
    }).graph
    expect(g.node.map((n) => n.op_type)).toEqual(Array(4).fill('GatherND'))
    expect(g.output.map((o) => g.node.find((n) => n.output.includes(o.name))?.op_type)).toEqual(Array(4).fill('GatherND'))
    for (const i of g.input) for (const d of i.type.tensor_type.shape.dim) expect(d.dim_param).toBeUndefined()
  })

  it('slotIds: per-head rows as int64 words; refuses an id outside its head', () => {
    const ids = slotIds(Int32Array.of(0, 4, 2, 9, 10, 13), 2, 7)
    expect(Array.from(new BigInt64Array(ids.buffer))).toEqual([0n, 4n, 2n, 2n, 3n, 6n])
    expect(() => slotIds(Int32Array.of(0, 7, 7, 8), 2, 7)).toThrow(RangeError) // 7 is head 1's first row
  })
})

describe('half variants (float16 sessions kept on the device)', () => {
  /** Values that probe float16 rounding: wide magnitudes, exact ties (rounded to even), subnormals, the largest finite. */
  function probes(n: number, seed: number): Float32Array {
    const rand = mulberry32(seed)
    const fixed = [1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), 2 ** -24 * 1.5, 2 ** -25, 3e-6, 65504, -65519, 0, -0, 1024 + 0.5, 2049]
    const a = new Float32Array(n)
    for (let i = 0; i < n; i++) a[i] = i < fixed.length ? fixed[i] : (rand() - 0.5) * 10 ** (rand() * 9 - 4)
    return a
  }
  const rounded = (a: Float32Array) => f16BitsToF32(f32ToF16Bits(a))
  /** Equal value by value (=== : +0 and −0 alike, see roundToHalf), with the first mismatch named. */
  const sameValues = (got: Float32Array, want: Float32Array, label: string) => {
    expect(got.length, label).toBe(want.length)
    const bad = got.findIndex((v, i) => v !== want[i])
    expect(bad, `${label}: index ${bad} got ${got[bad]} want ${want[bad]}`).toBe(-1)
  }

  it('dynamic gather: kept rows rounded to nearest even as the codec rounds them; kv_absmax is the max |x| before rounding', async () => {
    const [L, Hkv, Dh, T, K] = [2, 2, 8, 6, 4]
    const rand = mulberry32(9)
    const session = await ort.InferenceSession.create(buildKvGather({ layers: L, kvHeads: Hkv, headDim: Dh, half: true }))
    const feeds: Record<string, Tensor> = {}
    const expected: Record<string, Float32Array> = {}
    let absmax = 0
    for (let l = 0; l < L; l++) {
      const flat = Int32Array.from({ length: Hkv * K }, (_, i) => Math.floor(i / K) * T + Math.floor(rand() * T))
      feeds[gatherNames(l, 'key').rows] = new ort.Tensor('int32', flat, [flat.length])
      for (const [j, part] of (['key', 'value'] as const).entries()) {
        const n = gatherNames(l, part)
        const src = probes(Hkv * T * Dh, 20 + 2 * l + j)
        feeds[n.input] = new ort.Tensor('float32', src, [1, Hkv, T, Dh])
        const picked = gatherRef(src, Hkv, T, Dh, flat)
        for (const v of picked) absmax = Math.max(absmax, Math.abs(v))
        expected[n.output] = rounded(picked)
      }
    }
    const out = await session.run(feeds)
    for (const [n, e] of Object.entries(expected)) sameValues(out[n].data as Float32Array, e, n)
    expect(out[KV_ABSMAX].dims).toEqual([])
    expect((out[KV_ABSMAX].data as Float32Array)[0]).toBe(absmax)
    // already-rounded rows go through unchanged (a float16 memory's old rows, gathered every step)
    const again: Record<string, Tensor> = { ...feeds }
    for (let l = 0; l < L; l++) {
      again[gatherNames(l, 'key').rows] = new ort.Tensor('int32', Int32Array.from({ length: Hkv * T }, (_, i) => i), [Hkv * T])
      for (const part of ['key', 'value'] as const) again[gatherNames(l, part).input] = new ort.Tensor('float32', rounded(feeds[gatherNames(l, part).input].data as Float32Array), [1, Hkv, T, Dh])
    }
    const out2 = await session.run(again)
    for (let l = 0; l < L; l++) for (const part of ['key', 'value'] as const) sameValues(out2[gatherNames(l, part).output].data as Float32Array, again[gatherNames(l, part).input].data as Float32Array, `again ${l} ${part}`)
  })

  it('kv_absmax over many layers: a tree of Concats of at most 4 inputs (8 broke every dispatch of its submit on the H200), the right maximum', async () => {
    const [L, Hkv, Dh] = [12, 1, 4]
    const bytes = buildKvGather({ layers: L, kvHeads: Hkv, headDim: Dh, half: true })
    const t = modelProtoType()
    const nodes = (t.toObject(t.decode(bytes)) as { graph: { node: { op_type: string; input: string[] }[] } }).graph.node
    expect(Math.max(...nodes.filter((n) => n.op_type === 'Concat').map((n) => n.input.length))).toBe(4)
    const session = await ort.InferenceSession.create(bytes)
    const feeds: Record<string, Tensor> = {}
    for (let l = 0; l < L; l++) {
      feeds[`rows.${l}`] = new ort.Tensor('int32', Int32Array.of(0), [1])
      for (const [j, part] of (['key', 'value'] as const).entries()) feeds[gatherNames(l, part).input] = new ort.Tensor('float32', Float32Array.of(l, -(2 * l + j) - 0.5, 1, 2), [1, 1, 1, Dh])
    }
    const out = await session.run(feeds)
    expect((out[KV_ABSMAX].data as Float32Array)[0]).toBe(2 * (L - 1) + 1 + 0.5) // layer 11's value part
  })

  it("checkHalfRounding (the GPU host's start-up check): holds on wasm over its 98,304 probe values in 24 tensors", async () => {
    const c = await checkHalfRounding(ort, ['wasm'])
    expect(c, JSON.stringify(c.first)).toMatchObject({ ok: true, values: 98304, mismatches: 0, absmax: 70000, nanFlagged: true })
  })

  it('kv_absmax flags a value that overflows float16; checkHalfAbsMax refuses it (and NaN)', async () => {
    const session = await ort.InferenceSession.create(buildKvGather({ layers: 1, kvHeads: 1, headDim: 4, half: true }))
    const value = Float32Array.of(1, -70000, 2, 3)
    const out = await session.run({ 'rows.0': new ort.Tensor('int32', Int32Array.of(0), [1]), 'kv.0.key': new ort.Tensor('float32', value, [1, 1, 1, 4]), 'kv.0.value': new ort.Tensor('float32', Float32Array.of(0, 0, 0, 0), [1, 1, 1, 4]) })
    const absmax = (out[KV_ABSMAX].data as Float32Array)[0]
    expect(absmax).toBe(70000)
    expect(() => checkHalfAbsMax(absmax)).toThrow(NumericError)
    expect(() => checkHalfAbsMax(NaN)).toThrow(NumericError)
    // a NaN row: ORT's CPU ReduceMax alone would skip it; kv_absmax counts it as NAN_ABSMAX
    const nan = await session.run({ 'rows.0': new ort.Tensor('int32', Int32Array.of(0), [1]), 'kv.0.key': new ort.Tensor('float32', Float32Array.of(1, NaN, 2, 3), [1, 1, 1, 4]), 'kv.0.value': new ort.Tensor('float32', Float32Array.of(0, 0, 0, 0), [1, 1, 1, 4]) })
    expect(() => checkHalfAbsMax((nan[KV_ABSMAX].data as Float32Array)[0])).toThrow(/NaN/)
    // ±∞ too (ReduceSum(x · 0) is NaN for it), in the value tensor
    for (const inf of [Infinity, -Infinity]) {
      const out = await session.run({ 'rows.0': new ort.Tensor('int32', Int32Array.of(0), [1]), 'kv.0.key': new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [1, 1, 1, 4]), 'kv.0.value': new ort.Tensor('float32', Float32Array.of(0, inf, 0, 0), [1, 1, 1, 4]) })
      expect((out[KV_ABSMAX].data as Float32Array)[0]).toBe(Math.fround(NAN_ABSMAX))
    }
    expect(() => checkHalfAbsMax(HALF_OVERFLOW)).toThrow(/does not fit float16/)
    expect(() => checkHalfAbsMax(65519.99)).not.toThrow()
    expect(f32ToF16Bits(Float32Array.of(HALF_OVERFLOW))[0]).toBe(0x7c00) // the codec's rounding agrees: 65520 → ∞
  })

  it('slot gather: the slots get the rounded rows (the concat variant too)', async () => {
    const [Hkv, Dh, Mc, S] = [2, 4, 6, 3]
    for (const added of [undefined, S]) {
      const total = Mc + S
      const session = await ort.InferenceSession.create(buildSlotGather({ layers: 1, kvHeads: Hkv, headDim: Dh, total, capacity: Mc, ...(added && { added }), half: true }))
      const flat = Int32Array.from({ length: Hkv * Mc }, (_, i) => Math.floor(i / Mc) * total + ((i * 5) % total))
      const feeds: Record<string, Tensor> = { 'rows.0': new ort.Tensor('int64', new BigInt64Array(slotIds(flat, Hkv, total).buffer), [1, Hkv, Mc, 1]) }
      const expected: Record<string, Float32Array> = {}
      for (const [j, part] of (['key', 'value'] as const).entries()) {
        const n = gatherNames(0, part)
        const all = probes(Hkv * total * Dh, 40 + j)
        if (added) {
          const bank = new Float32Array(Hkv * Mc * Dh)
          const extra = new Float32Array(Hkv * S * Dh)
          for (let h = 0; h < Hkv; h++) {
            bank.set(all.subarray(h * total * Dh, (h * total + Mc) * Dh), h * Mc * Dh)
            extra.set(all.subarray((h * total + Mc) * Dh, (h + 1) * total * Dh), h * S * Dh)
          }
          feeds[n.input] = new ort.Tensor('float32', bank, [1, Hkv, Mc, Dh])
          feeds[n.added] = new ort.Tensor('float32', extra, [1, Hkv, S, Dh])
        } else feeds[n.input] = new ort.Tensor('float32', all, [1, Hkv, total, Dh])
        expected[n.output] = rounded(gatherRef(all, Hkv, total, Dh, flat))
      }
      const out = await session.run(feeds)
      for (const [n, e] of Object.entries(expected)) sameValues(out[n].data as Float32Array, e, `${n} added=${added}`)
    }
  })
})

