/**
 * The fixed-capacity float-table graph (`buildDecoderOnnx` with `fixed`, weights read back from each
 * committed model by `readDecoderWeights`) against the committed model itself, on wasm: the same
 * step (S new tokens against P real past rows) gives the same logits, present rows, attention
 * statistics and hidden norms, while the C − P empty slots hold finite junk that the attention bias
 * must mask. This is what the GPU host's captured step (`gpu/static-step.ts`) runs.
 */
import { describe, expect, it } from 'vitest'
import type { Tensor } from 'onnxruntime-web'
import { relErr } from '../../sim/client.ts'
import { nodeModelSource } from '../../gpu/node-models.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { staticGraph, staticSupported, staticTables } from '../../gpu/static-step.ts'
import { MASKED_SCORE } from '../../models/decoder/graph.ts'
import { readDecoderWeights } from '../../models/decoder/read-weights.ts'
import { mulberry32, normalSource } from '../../models/decoder/weights.ts'

const ort = ortForNode()

function gauss(n: number, seed: number, std = 1): Float32Array {
  const normal = normalSource(mulberry32(seed))
  return Float32Array.from({ length: n }, () => std * normal())
}

describe('staticTables', () => {
  it('bias: past slots below P and new tokens up to the query attend, the rest is masked; window and RoPE', () => {
    const t = staticTables([5, 6, 7], 2, 4, 2, { headDim: 4, ropeBase: 10000 })
    const M = MASKED_SCORE
    // columns: slots 0..3 (2 real), new tokens 0..2
    expect(Array.from(t.bias)).toEqual([
      0, 0, M, M, 0, M, M,
      0, 0, M, M, 0, 0, M,
      0, 0, M, M, 0, 0, 0,
    ])
    expect(Array.from(t.window)).toEqual([0, 1, 1])
    // padded to 5 query rows: the real rows' bias unchanged (they never see the padding); a padding
    // row attends only padding columns up to itself (no probability on a real column); window 0 on
    // the padding, positions continued
    const p = staticTables([5, 6, 7], 2, 4, 2, { headDim: 4, ropeBase: 10000 }, 5)
    expect(Array.from(p.bias)).toEqual([
      0, 0, M, M, 0, M, M, M, M,
      0, 0, M, M, 0, 0, M, M, M,
      0, 0, M, M, 0, 0, 0, M, M,
      M, M, M, M, M, M, M, 0, M,
      M, M, M, M, M, M, M, 0, 0,
    ])
    expect(Array.from(p.window)).toEqual([0, 1, 1, 0, 0])
    expect(p.cos[4 * 4]).toBe(Math.fround(Math.cos(9)))
    expect(() => staticTables([0, 1], 0, 4, 1, { headDim: 4, ropeBase: 10000 }, 1)).toThrow(RangeError)
    // position 6, Dh 4: inv_freq [1, 0.01], halves duplicated, float32 of float64 cos/sin
    expect(Array.from(t.cos.subarray(4, 8))).toEqual([Math.fround(Math.cos(6)), Math.fround(Math.cos(0.06)), Math.fround(Math.cos(6)), Math.fround(Math.cos(0.06))])
    expect(Array.from(t.sin.subarray(4, 8))).toEqual([Math.fround(Math.sin(6)), Math.fround(Math.sin(0.06)), Math.fround(Math.sin(6)), Math.fround(Math.sin(0.06))])
    expect(() => staticTables([0, 1], 5, 4, 1, { headDim: 4, ropeBase: 10000 })).toThrow(RangeError)
    expect(() => staticTables([0, 1], 0, 4, 3, { headDim: 4, ropeBase: 10000 })).toThrow(RangeError)
  })
})

describe('fixed-capacity float-table graph', () => {
  it('reads every weight of the committed models (torch export and stepkv builder layouts)', () => {
    for (const id of ['tiny-gqa', 'robot-carried', 'gui-carried']) {
      const src = nodeModelSource(id)
      const m = src.manifest
      expect(staticSupported(m), id).toBe(true)
      const w = readDecoderWeights(src.bytes() as Uint8Array, { ...m })
      expect(w.layers).toHaveLength(m.layers)
      expect(w.lmHead.length).toBe(m.hiddenSize * m.vocabSize)
      // the trained agent models: no embedding table (inputs_embeds), an action head with a bias
      expect(w.embed.length, id).toBe(m.ports.inputsEmbeds ? 0 : m.vocabSize * m.hiddenSize)
      expect(w.lmHeadBias !== undefined, id).toBe(id !== 'tiny-gqa')
    }
    expect(staticSupported(nodeModelSource('robot-tempo').manifest)).toBe(false)
    expect(() => readDecoderWeights(nodeModelSource('tiny-gqa').bytes() as Uint8Array, { ...nodeModelSource('tiny-gqa').manifest, intermediateSize: 64 })).toThrow(/w_gate.*expected/)
  })

  it('capture-safe: every output comes from a computing node, no MatMul + bias Add for ORT to fuse into Reshape → Gemm', async () => {
    // a Reshape or Identity into a bound output is a buffer copy WebGPU graph capture does not record
    // (replays kept the first step's logits on the H200 until the head bias became a Sub)
    const { modelProtoType } = await import('../../models/onnx/proto.ts')
    for (const id of ['tiny-gqa', 'robot-carried']) {
      const src = nodeModelSource(id)
      const t = modelProtoType()
      const g = (t.toObject(t.decode(await staticGraph(src, 8, 16))) as { graph: { node: { op_type: string; input: string[]; output: string[] }[]; initializer: { name: string }[]; output: { name: string }[] } }).graph
      const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n])))
      const inits = new Set(g.initializer.map((i) => i.name))
      for (const o of g.output) expect(['Identity', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten'], `${id} ${o.name}`).not.toContain(producer.get(o.name)?.op_type)
      const fusable = g.node.filter((n) => n.op_type === 'Add' && n.input.some((i) => inits.has(i)) && n.input.some((i) => producer.get(i)?.op_type === 'MatMul'))
      expect(fusable.map((n) => n.output[0]), id).toEqual([])
    }
  })

  it('builds only the optional outputs a policy reads (window_weight goes with attn_window); logits and present unchanged', async () => {
    const src = nodeModelSource('tiny-gqa')
    const m = src.manifest
    const [S, C, P] = [6, 16, 5]
    const tables = staticTables(Array.from({ length: S }, (_, i) => P + i), P, C, 2, m)
    const full = await ort.InferenceSession.create(await staticGraph(src, S, C))
    const feeds: Record<string, Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt((i * 37) % 256)), [1, S]),
      rope_cos: new ort.Tensor('float32', tables.cos, [1, 1, S, m.headDim]),
      rope_sin: new ort.Tensor('float32', tables.sin, [1, 1, S, m.headDim]),
      attention_bias: new ort.Tensor('float32', tables.bias, [1, 1, S, C + S]),
      window_weight: new ort.Tensor('float32', tables.window, [1, 1, 1, S]),
    }
    for (let l = 0; l < m.layers; l++)
      for (const [j, p] of ['key', 'value'].entries()) feeds[`past_key_values.${l}.${p}`] = new ort.Tensor('float32', gauss(m.kvHeads * C * m.headDim, 7 + 2 * l + j), [1, m.kvHeads, C, m.headDim])
    const want = await full.run(feeds)
    const present = Array.from({ length: m.layers }, (_, l) => [`present.${l}.key`, `present.${l}.value`]).flat()
    for (const ports of [[], ['attn_total'], ['attn_window', 'hidden_norm']] as const) {
      const pruned = await ort.InferenceSession.create(await staticGraph(src, S, C, ports))
      const perLayer = ports.flatMap((p) => Array.from({ length: m.layers }, (_, l) => `${p}.${l}`))
      expect([...pruned.outputNames].sort(), ports.join()).toEqual(['logits', ...present, ...perLayer].sort())
      expect(pruned.inputNames.includes('window_weight'), ports.join()).toBe(ports.includes('attn_window' as never))
      const got = await pruned.run(Object.fromEntries(Object.entries(feeds).filter(([n]) => pruned.inputNames.includes(n))))
      for (const n of ['logits', ...present, ...perLayer]) expect(Array.from(got[n].data as Float32Array), n).toEqual(Array.from(want[n].data as Float32Array))
      await pruned.release()
    }
    // a float16 memory's graph adds kv_absmax: the largest |x| of the new rows it stores (present
    // rows C … C + S − 1 of every layer and head), computed here from the outputs; nothing else moves
    const half = await ort.InferenceSession.create(await staticGraph(src, S, C, [], undefined, true))
    const got = await half.run(Object.fromEntries(Object.entries(feeds).filter(([n]) => half.inputNames.includes(n))))
    let absmax = 0
    for (const n of present) {
      const a = got[n].data as Float32Array
      for (let h = 0; h < m.kvHeads; h++) for (let i = (h * (C + S) + C) * m.headDim; i < (h + 1) * (C + S) * m.headDim; i++) absmax = Math.max(absmax, Math.abs(a[i]))
      expect(Array.from(a), n).toEqual(Array.from(want[n].data as Float32Array))
    }
    expect(absmax).toBeGreaterThan(0)
    expect(got.kv_absmax.dims).toEqual([])
    expect((got.kv_absmax.data as Float32Array)[0]).toBe(absmax)
    expect(Array.from(got.logits.data as Float32Array)).toEqual(Array.from(want.logits.data as Float32Array))
    await half.release()
    await full.release()
  })

  for (const [id, P, S, C, rows] of [
    ['tiny-gqa', 23, 9, 64, 9],
    ['tiny-gqa', 23, 9, 64, 16],
    ['robot-carried', 53, 53, 128, 53],
    ['robot-carried', 53, 54, 128, 64],
    ['gui-carried', 87, 40, 160, 48],
  ] as const)
    it(`${id}: the committed model's outputs for S = ${S} new tokens (${rows} query rows) against P = ${P} of C = ${C} slots`, async () => {
      const src = nodeModelSource(id)
      const m = src.manifest
      const { kvHeads: Hkv, headDim: Dh, layers: L } = m
      const dynamic = await ort.InferenceSession.create(src.bytes() as Uint8Array)
      const fixed = await ort.InferenceSession.create(await staticGraph(src, rows, C))
      const prefix = (n: number, seed: number): Record<string, Tensor> =>
        m.ports.inputsEmbeds
          ? { inputs_embeds: new ort.Tensor('float32', gauss(n * m.hiddenSize, seed), [1, n, m.hiddenSize]) }
          : { input_ids: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 37 + seed) % 256)), [1, n]) }
      const empty = () => new ort.Tensor('float32', new Float32Array(0), [1, Hkv, 0, Dh])
      const ids = (from: number, n: number) => new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(from + i)), [1, n])
      const window = 8
      const obs = new ort.Tensor('int64', BigInt64Array.of(BigInt(window)), [])
      // step 1 (empty past) makes a real past of P rows
      const feeds1: Record<string, Tensor> = { ...prefix(P, 1), position_ids: ids(0, P), attention_mask: new ort.Tensor('int64', new BigInt64Array(P).fill(1n), [1, P]), obs_window: obs }
      for (let l = 0; l < L; l++) Object.assign(feeds1, { [`past_key_values.${l}.key`]: empty(), [`past_key_values.${l}.value`]: empty() })
      const step1 = await dynamic.run(feeds1)
      const past = Array.from({ length: L }, (_, l) => ['key', 'value'].map((p) => step1[`present.${l}.${p}`].data as Float32Array)).flat()
      // step 2, the contract's graph
      const pos0 = 1000 // positions need not start at P: a pruned memory keeps its absolute positions
      const x = prefix(S, 2)
      const feeds2: Record<string, Tensor> = { ...x, position_ids: ids(pos0, S), attention_mask: new ort.Tensor('int64', new BigInt64Array(P + S).fill(1n), [1, P + S]), obs_window: obs }
      for (let l = 0; l < L; l++)
        for (const [j, p] of ['key', 'value'].entries()) feeds2[`past_key_values.${l}.${p}`] = new ort.Tensor('float32', past[2 * l + j], [1, Hkv, P, Dh])
      const want = await dynamic.run(feeds2)
      // the same step, fixed: each head's P rows then C − P slots of finite junk; the prefix padded
      // to `rows` query rows with junk too (their outputs must not reach the real ones)
      const tables = staticTables(Array.from({ length: S }, (_, i) => pos0 + i), P, C, window, m, rows)
      const padded = (t: Tensor): Tensor => {
        if (t.type === 'int64') return new ort.Tensor('int64', BigInt64Array.from({ length: rows }, (_, i) => (i < S ? (t.data as BigInt64Array)[i] : 7n)), [1, rows])
        const a = gauss(rows * m.hiddenSize, 99)
        a.set(t.data as Float32Array)
        return new ort.Tensor('float32', a, [1, rows, m.hiddenSize])
      }
      const feeds3: Record<string, Tensor> = {
        ...Object.fromEntries(Object.entries(x).map(([n, t]) => [n, padded(t)])),
        rope_cos: new ort.Tensor('float32', tables.cos, [1, 1, rows, Dh]),
        rope_sin: new ort.Tensor('float32', tables.sin, [1, 1, rows, Dh]),
        attention_bias: new ort.Tensor('float32', tables.bias, [1, 1, rows, C + rows]),
        window_weight: new ort.Tensor('float32', tables.window, [1, 1, 1, rows]),
      }
      for (let l = 0; l < L; l++)
        for (const [j, p] of ['key', 'value'].entries()) {
          const slots = gauss(Hkv * C * Dh, 100 + 2 * l + j, 3)
          for (let h = 0; h < Hkv; h++) slots.set(past[2 * l + j].subarray(h * P * Dh, (h + 1) * P * Dh), h * C * Dh)
          feeds3[`past_key_values.${l}.${p}`] = new ort.Tensor('float32', slots, [1, Hkv, C, Dh])
        }
      const got = await fixed.run(feeds3)
      expect([...got.logits.dims]).toEqual([1, rows, m.vocabSize])
      expect(relErr((got.logits.data as Float32Array).subarray(0, S * m.vocabSize), want.logits.data as Float32Array)).toBeLessThan(1e-5)
      // per head: P real rows, then the S new ones; the empty slots' columns get no attention
      const real = (a: Float32Array, width: number) => {
        const out: number[] = []
        const junk: number[] = []
        for (let h = 0; h < Hkv; h++) {
          const base = h * (C + rows) * width
          out.push(...a.subarray(base, base + P * width), ...a.subarray(base + C * width, base + (C + S) * width))
          junk.push(...a.subarray(base + P * width, base + C * width))
        }
        return { out, junk }
      }
      for (let l = 0; l < L; l++) {
        for (const p of ['key', 'value']) expect(relErr(real(got[`present.${l}.${p}`].data as Float32Array, Dh).out, want[`present.${l}.${p}`].data as Float32Array)).toBeLessThan(1e-5)
        for (const p of ['attn_window', 'attn_total']) {
          const { out, junk } = real(got[`${p}.${l}`].data as Float32Array, 1)
          expect(relErr(out, want[`${p}.${l}`].data as Float32Array), `${p}.${l}`).toBeLessThan(1e-5)
          expect(Math.max(...junk.map(Math.abs)), `${p}.${l} on empty slots`).toBe(0)
        }
        expect(relErr((got[`hidden_norm.${l}`].data as Float32Array).subarray(0, S), want[`hidden_norm.${l}`].data as Float32Array)).toBeLessThan(1e-5)
      }
      await Promise.all([dynamic.release(), fixed.release()])
    })
})

describe('fixed TempoFit graph (no carried K/V, a bank of fixed slots)', () => {
  for (const [id, S, rows, M, Mc] of [
    ['tiny-gqa-tempo', 9, 16, 20, 32],
    ['robot-tempo', 54, 64, 108, 128],
  ] as const)
    it(`${id}: the committed model's logits, tempo_prefix and statistics for S = ${S} (${rows} rows) against M = ${M} bank rows in ${Mc} slots`, async () => {
      const src = nodeModelSource(id)
      const m = src.manifest
      const { kvHeads: Hkv, headDim: Dh, layers: L } = m
      const dynamic = await ort.InferenceSession.create(src.bytes() as Uint8Array)
      const fixed = await ort.InferenceSession.create(await staticGraph(src, rows, 0, undefined, Mc))
      expect(fixed.inputNames.some((n) => n.startsWith('past_key_values.')), 'no past inputs').toBe(false)
      expect(fixed.outputNames.some((n) => n.startsWith('present.')), 'no present outputs').toBe(false)
      const embeds = gauss(S * m.hiddenSize, 41)
      const ids = BigInt64Array.from({ length: S }, (_, i) => BigInt((i * 53 + 11) % 256))
      // a bank: per memory layer M real rows (a frame-gap bias on them) and, fixed, Mc − M junk slots
      const bankBias = Float32Array.from({ length: Hkv * M }, (_, i) => -0.25 * (1 + (i % M >> 3)) * (1 + (i >= M ? 1 : 0)))
      const banks = m.tempoLayers.map((l, i) => ({ l, key: gauss(Hkv * M * Dh, 60 + 2 * i), value: gauss(Hkv * M * Dh, 61 + 2 * i) }))
      const window = 4
      const feeds: Record<string, Tensor> = {
        ...(m.ports.inputsEmbeds ? { inputs_embeds: new ort.Tensor('float32', embeds, [1, S, m.hiddenSize]) } : { input_ids: new ort.Tensor('int64', ids, [1, S]) }),
        position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(i)), [1, S]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(S).fill(1n), [1, S]),
        obs_window: new ort.Tensor('int64', BigInt64Array.of(BigInt(window)), m.inputs.find((i) => i.name === 'obs_window')!.dims.map(() => 1)),
        tempo_bias: new ort.Tensor('float32', bankBias, [1, Hkv, 1, M]),
      }
      for (let l = 0; l < L; l++) for (const p of ['key', 'value']) feeds[`past_key_values.${l}.${p}`] = new ort.Tensor('float32', new Float32Array(0), [1, Hkv, 0, Dh])
      for (const b of banks) for (const p of ['key', 'value'] as const) feeds[`tempo.${b.l}.${p}`] = new ort.Tensor('float32', b[p], [1, Hkv, M, Dh])
      const want = await dynamic.run(feeds)
      // fixed: the prefix padded with junk rows, the bank's empty slots junk under a masked bias
      const tables = staticTables(Array.from({ length: S }, (_, i) => i), 0, 0, window, m, rows)
      const slots = (real: Float32Array, seed: number) => {
        const a = gauss(Hkv * Mc * Dh, seed, 3)
        for (let h = 0; h < Hkv; h++) a.set(real.subarray(h * M * Dh, (h + 1) * M * Dh), h * Mc * Dh)
        return a
      }
      const fixedBias = new Float32Array(Hkv * Mc).fill(MASKED_SCORE)
      for (let h = 0; h < Hkv; h++) fixedBias.set(bankBias.subarray(h * M, (h + 1) * M), h * Mc)
      const padded = m.ports.inputsEmbeds ? gauss(rows * m.hiddenSize, 99) : BigInt64Array.from({ length: rows }, (_, i) => (i < S ? ids[i] : 7n))
      if (padded instanceof Float32Array) padded.set(embeds)
      const feeds2: Record<string, Tensor> = {
        ...(padded instanceof Float32Array ? { inputs_embeds: new ort.Tensor('float32', padded, [1, rows, m.hiddenSize]) } : { input_ids: new ort.Tensor('int64', padded, [1, rows]) }),
        rope_cos: new ort.Tensor('float32', tables.cos, [1, 1, rows, Dh]),
        rope_sin: new ort.Tensor('float32', tables.sin, [1, 1, rows, Dh]),
        attention_bias: new ort.Tensor('float32', tables.bias, [1, 1, rows, rows]),
        window_weight: new ort.Tensor('float32', tables.window, [1, 1, 1, rows]),
        tempo_bias: new ort.Tensor('float32', fixedBias, [1, Hkv, 1, Mc]),
      }
      banks.forEach((b, i) => {
        for (const [j, p] of (['key', 'value'] as const).entries()) feeds2[`tempo.${b.l}.${p}`] = new ort.Tensor('float32', slots(b[p], 200 + 2 * i + j), [1, Hkv, Mc, Dh])
      })
      const got = await fixed.run(feeds2)
      const realRows = (a: Float32Array, width: number, total: number, keep: number) => {
        const out: number[] = []
        for (let h = 0; h < Hkv; h++) out.push(...a.subarray(h * total * width, (h * total + keep) * width))
        return out
      }
      expect(relErr((got.logits.data as Float32Array).subarray(0, S * m.vocabSize), want.logits.data as Float32Array)).toBeLessThan(1e-5)
      for (const l of m.tempoLayers)
        for (const p of ['key', 'value']) expect(relErr(realRows(got[`tempo_prefix.${l}.${p}`].data as Float32Array, Dh, rows, S), want[`tempo_prefix.${l}.${p}`].data as Float32Array), `tempo_prefix.${l}.${p}`).toBeLessThan(1e-5)
      for (let l = 0; l < L; l++) {
        for (const p of ['attn_window', 'attn_total']) expect(relErr(realRows(got[`${p}.${l}`].data as Float32Array, 1, rows, S), want[`${p}.${l}`].data as Float32Array), `${p}.${l}`).toBeLessThan(1e-5)
        expect(relErr((got[`hidden_norm.${l}`].data as Float32Array).subarray(0, S), want[`hidden_norm.${l}`].data as Float32Array)).toBeLessThan(1e-5)
      }
      // an all-masked bank (the first step) gives the same as an empty one
      const empty: Record<string, Tensor> = { ...feeds, tempo_bias: new ort.Tensor('float32', new Float32Array(0), [1, Hkv, 1, 0]) }
      for (const b of banks) for (const p of ['key', 'value']) empty[`tempo.${b.l}.${p}`] = new ort.Tensor('float32', new Float32Array(0), [1, Hkv, 0, Dh])
      const wantEmpty = await dynamic.run(empty)
      const gotEmpty = await fixed.run({ ...feeds2, tempo_bias: new ort.Tensor('float32', new Float32Array(Hkv * Mc).fill(MASKED_SCORE), [1, Hkv, 1, Mc]) })
      expect(relErr((gotEmpty.logits.data as Float32Array).subarray(0, S * m.vocabSize), wantEmpty.logits.data as Float32Array)).toBeLessThan(1e-5)
      await Promise.all([dynamic.release(), fixed.release()])
    })

  it('capture-safe: every output of the fixed TempoFit graph comes from a computing node', async () => {
    const { modelProtoType } = await import('../../models/onnx/proto.ts')
    const t = modelProtoType()
    const g = (t.toObject(t.decode(await staticGraph(nodeModelSource('robot-tempo'), 16, 0, [], 32))) as { graph: { node: { op_type: string; output: string[] }[]; output: { name: string }[] } }).graph
    const producer = new Map(g.node.flatMap((n) => n.output.map((o) => [o, n])))
    expect(g.output.map((o) => o.name).sort()).toEqual(['logits', 'tempo_prefix.1.key', 'tempo_prefix.1.value', 'tempo_prefix.2.key', 'tempo_prefix.2.value'])
    for (const o of g.output) expect(['Identity', 'Reshape', 'Unsqueeze', 'Squeeze', 'Flatten'], o.name).not.toContain(producer.get(o.name)?.op_type)
    expect(g.node.filter((n) => n.op_type === 'Shape'), 'no shape arithmetic').toEqual([])
  })
})
