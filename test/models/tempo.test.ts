/**
 * @module The generated 'tiny-gqa-tempo' model (tiny-gqa's weights with TempoFit ports at layers
 * [1, 2]): reproducible bytes and manifest, and ORT-web (wasm) agreeing with the float64 reference
 * on logits, present K/V and tempo_prefix for empty, masked, random and self-built banks.
 * @see TempoFit, arXiv:2603.07647
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import type { ModelManifest } from '../../gpu/manifest.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import {
  middleThirdLayers,
  TINY_GQA,
  TINY_GQA_SEED,
  TINY_GQA_TEMPO as C,
} from '../../models/decoder/config.ts'
import { buildDecoderOnnx } from '../../models/decoder/graph.ts'
import { generateWeights, mulberry32, normalSource } from '../../models/decoder/weights.ts'
import { forward64, type Forward64Input, type KV64, type Tempo64 } from '../reference/decoder64.ts'
import { relErr, runStep, TOL, worstErr, type OrtStep } from './harness.ts'

const modelDir = (id: string) => new URL(`../../models/${id}/`, import.meta.url)
const read = (id: string, file: string) => readFileSync(new URL(file, modelDir(id)))
const modelBytes = read('tiny-gqa-tempo', 'model.onnx')
const manifest: ModelManifest = JSON.parse(read('tiny-gqa-tempo', 'manifest.json').toString())
const baseManifest: ModelManifest = JSON.parse(read('tiny-gqa', 'manifest.json').toString())
const weights = generateWeights(C, TINY_GQA_SEED)
const ort = ortForNode()
const { kvHeads: Hkv, headDim: Dh } = C
const LAYERS = [...C.tempoLayers!]
let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>
let baseSession: typeof session
const runOrt = (input: Forward64Input) => runStep(ort, session, C, input)

/** Runs ORT and the reference (with `refTempo` if given, for a reference-built bank) and checks
 * every output, tempo_prefix included, within TOL. */
async function expectAgree(input: Forward64Input, refTempo = input.tempo) {
  const tempo = refTempo ?? { layers: LAYERS, bank: LAYERS.map(() => emptyKV(0)), bias: [] }
  const [a, b] = [await runOrt(input), forward64(C, weights, { ...input, tempo })]
  const errs = worstErr(a, b)
  expect(Object.keys(errs)).toContain('tempoPrefixKey')
  for (const [name, err] of Object.entries(errs)) {
    expect(err, `${name} relErr ${err}`).toBeLessThanOrEqual(TOL)
  }
  return { ort: a, ref: b }
}

const random = mulberry32(11)
const normal = normalSource(mulberry32(12))
const tokens = (n: number) => Array.from({ length: n }, () => Math.floor(random() * C.vocabSize))
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i)
const ones = (n: number) => new Array<number>(n).fill(1)
/** A fresh prefill (TempoFit carries no past): S tokens at positions from…from+S−1. */
const step = (S: number, from: number, tempo?: Tempo64): Forward64Input => ({
  inputIds: tokens(S),
  positionIds: range(from, S),
  attentionMask: ones(S),
  past: [],
  obsWindow: Math.max(1, S - 1),
  tempo,
})
const emptyKV = (tokensPerHead: number): KV64 => ({
  key: new Float32Array(Hkv * tokensPerHead * Dh),
  value: new Float32Array(Hkv * tokensPerHead * Dh),
})

/** ALiBi-style slopes m_h = 2^(−8h/Hkv) (1 and 1/16 here) and β = 1, so one frame of gap costs
 * head 0 one logit: bias(h, slot) = −β · m_h · gap. */
const SLOPES = Array.from({ length: Hkv }, (_, h) => 2 ** ((-8 * h) / Hkv))

/** A bank of frames [kvHeads, S_f, headDim] each (pre-RoPE), per memory layer → per layer
 * [kvHeads, ΣS_f, headDim], and the bias [kvHeads, ΣS_f] from each frame's gap (null = an empty
 * FIFO slot, bias −∞ or `emptyBias`). */
function bank(
  frames: { layers: KV64[]; gap: number | null }[],
  emptyBias = -Infinity,
): Tempo64 {
  const sizes = frames.map((f) => f.layers[0].key.length / (Hkv * Dh))
  const M = sizes.reduce((a, b) => a + b, 0)
  const bias = new Float64Array(Hkv * M)
  const kv = LAYERS.map(() => emptyKV(M))
  for (let h = 0; h < Hkv; h++) {
    let slot = 0
    frames.forEach((f, n) => {
      for (let j = 0; j < sizes[n]; j++, slot++) {
        bias[h * M + slot] = f.gap === null ? emptyBias : -SLOPES[h] * f.gap
        LAYERS.forEach((_, i) => {
          for (const part of ['key', 'value'] as const) {
            const from = (h * sizes[n] + j) * Dh
            kv[i][part].set(f.layers[i][part].subarray(from, from + Dh), (h * M + slot) * Dh)
          }
        })
      }
    })
  }
  return { layers: LAYERS, bank: kv, bias }
}

/** A random frame of S tokens: N(0, std²) keys and values (pre-RoPE keys of tiny-gqa have
 * std ≈ 1.6 per coordinate), one per memory layer. */
const randomFrame = (S: number, std = 1.6): KV64[] =>
  LAYERS.map(() => ({
    key: Float32Array.from({ length: Hkv * S * Dh }, () => std * normal()),
    value: Float32Array.from({ length: Hkv * S * Dh }, () => std * normal()),
  }))

const hasNaN = (s: OrtStep) =>
  [s.logits, ...s.present.flatMap((kv) => [kv.key, kv.value])].some((a) => a.some(Number.isNaN))

beforeAll(async () => {
  session = await ort.InferenceSession.create(modelBytes)
  baseSession = await ort.InferenceSession.create(read('tiny-gqa', 'model.onnx'))
})

describe('tiny-gqa-tempo model file', () => {
  it('rebuilds from config + seed to the committed bytes and manifest sha256', () => {
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
    expect(sha(buildDecoderOnnx(C, weights))).toBe(manifest.sha256)
    expect(sha(modelBytes)).toBe(manifest.sha256)
    expect(modelBytes.length).toBeLessThan(1 << 20)
  })

  it('uses tiny-gqa weights and the middle third of its layers, [1, 2]', () => {
    expect(C.tempoLayers).toEqual([1, 2])
    expect(middleThirdLayers(4)).toEqual([1, 2])
    expect(middleThirdLayers(18)).toEqual([6, 7, 8, 9, 10, 11])
    expect(weights).toEqual(generateWeights(TINY_GQA, TINY_GQA_SEED))
    expect(manifest.provenance.seed).toBe(TINY_GQA_SEED)
  })

  it('declares the TempoFit ports in the manifest and the graph', () => {
    expect(manifest.id).toBe('tiny-gqa-tempo')
    expect(manifest.ports).toEqual({ ...baseManifest.ports, tempo: true })
    expect(manifest.tempoLayers).toEqual([1, 2])
    const port = (list: ModelManifest['inputs'], name: string) => list.find((p) => p.name === name)
    for (const l of [1, 2]) {
      for (const part of ['key', 'value']) {
        const bankDims = ['batch', Hkv, 'memory', Dh]
        expect(port(manifest.inputs, `tempo.${l}.${part}`)?.dims).toEqual(bankDims)
        const prefixDims = ['batch', Hkv, 'seq', Dh]
        expect(port(manifest.outputs, `tempo_prefix.${l}.${part}`)?.dims).toEqual(prefixDims)
      }
    }
    expect(port(manifest.inputs, 'tempo_bias')?.dims).toEqual(['batch', Hkv, 1, 'memory'])
    const tempoName = /^tempo/
    const rest = (list: ModelManifest['inputs']) => list.filter((p) => !tempoName.test(p.name))
    expect(rest(manifest.inputs)).toEqual(baseManifest.inputs)
    expect(rest(manifest.outputs)).toEqual(baseManifest.outputs)
    expect(manifest.inputs.length - baseManifest.inputs.length).toBe(5)
    expect([...session.inputNames]).toEqual(manifest.inputs.map((p) => p.name))
    expect([...session.outputNames]).toEqual(manifest.outputs.map((p) => p.name))
  })
})

describe('ORT-web vs float64 reference with TempoFit', () => {
  it.each([1, 4, 9])('M = 0 (empty bank), %i tokens: agrees, and matches tiny-gqa', async (S) => {
    const input = step(S, 3)
    const { ort: a } = await expectAgree(input)
    expect(hasNaN(a)).toBe(false)
    // With no memory the layer is unchanged up to the ε rescale: tiny-gqa's outputs.
    const base = await runStep(ort, baseSession, TINY_GQA, input)
    expect(relErr(a.logits, base.logits)).toBeLessThanOrEqual(1e-5)
    for (let l = 0; l < C.layers; l++) {
      expect(relErr(a.present[l].key, base.present[l].key)).toBeLessThanOrEqual(1e-5)
    }
    // tempo_prefix.l.key is the pre-RoPE key: at position 0 it equals tiny-gqa's present key.
    const atZero = await runOrt({ ...input, positionIds: new Array<number>(S).fill(0) })
    const baseAtZero = await runStep(ort, baseSession, TINY_GQA, {
      ...input,
      positionIds: new Array<number>(S).fill(0),
    })
    LAYERS.forEach((l, i) => {
      expect(relErr(atZero.tempoPrefix[i].key, baseAtZero.present[l].key)).toBeLessThan(1e-6)
      expect(relErr(atZero.tempoPrefix[i].value, baseAtZero.present[l].value)).toBeLessThan(1e-6)
    })
  })

  it.each([1, 5])(
    'a bank of 3 frames × %i tokens, gaps 3, 2, 1, ALiBi-slope bias',
    async (S) => {
      const frames = [3, 2, 1].map((gap) => ({ layers: randomFrame(S), gap }))
      const input = step(S, 40, bank(frames))
      const { ort: a } = await expectAgree(input)
      expect(hasNaN(a)).toBe(false)
      // The memory matters, and so does the bias.
      const empty = await runOrt({ ...input, tempo: undefined })
      expect(relErr(a.logits, empty.logits)).toBeGreaterThan(100 * TOL)
      const flat = { ...input.tempo!, bias: new Float64Array(input.tempo!.bias.length) }
      const { ort: unbiased } = await expectAgree({ ...input, tempo: flat })
      expect(relErr(a.logits, unbiased.logits)).toBeGreaterThan(10 * TOL)
    },
  )

  it('a FIFO with empty slots (−∞) equals the bank of its filled frames', async () => {
    const filled = [2, 1].map((gap) => ({ layers: randomFrame(4), gap }))
    const holes = [null, null].map((gap) => ({ layers: randomFrame(4), gap }))
    const input = step(4, 20, bank([...holes, ...filled]))
    const { ort: a } = await expectAgree(input)
    const b = await runOrt({ ...input, tempo: bank(filled) })
    expect(relErr(a.logits, b.logits)).toBeLessThanOrEqual(1e-6)
  })

  it.each([-1e9, -Infinity])(
    'every slot masked (bias %d) retrieves exactly nothing, no NaN',
    async (emptyBias) => {
      const frames = [null, null, null].map((gap) => ({ layers: randomFrame(3), gap }))
      const input = step(3, 10, bank(frames, emptyBias))
      expect(Math.max(...Array.from(input.tempo!.bias))).toBe(emptyBias)
      const { ort: a } = await expectAgree(input)
      expect(hasNaN(a)).toBe(false)
      const none = await runOrt({ ...input, tempo: undefined })
      expect(a.logits).toEqual(none.logits)
      for (let l = 0; l < C.layers; l++) expect(a.present[l]).toEqual(none.present[l])
    },
  )

  it("a bank built from the model's own tempo_prefix outputs of earlier steps", async () => {
    // A FIFO of N = 3 frames; each step prefills S = 5 fresh tokens (no past) after the last.
    const S = 5
    const N = 3
    const ortFrames: KV64[][] = []
    const refFrames: KV64[][] = []
    let moved = 0
    for (let t = 0; t < 5; t++) {
      const kept = (frames: KV64[][]) =>
        frames.slice(-N).map((layers, n, all) => ({ layers, gap: all.length - n }))
      const ortBank = ortFrames.length ? bank(kept(ortFrames)) : undefined
      const refBank = refFrames.length ? bank(kept(refFrames)) : undefined
      const input = step(S, t * S, ortBank)
      const { ort: a, ref: b } = await expectAgree(input, refBank)
      ortFrames.push(a.tempoPrefix)
      refFrames.push(b.tempoPrefix!)
      if (t > 0) {
        const alone = await runOrt({ ...input, tempo: undefined })
        moved = Math.max(moved, relErr(a.logits, alone.logits))
      }
    }
    expect(moved).toBeGreaterThan(100 * TOL)
  })
})

describe('the comparison can fail', () => {
  const frames = [3, 2, 1].map((gap) => ({ layers: randomFrame(4), gap }))
  const input = step(4, 30, bank(frames))

  it.each(['no-rescale', 'query-to-key'] as const)(
    'a reference with the %s ablation disagrees with ORT',
    async (ablation) => {
      const a = await runOrt(input)
      const right = forward64(C, weights, input)
      const wrong = forward64(C, weights, { ...input, tempo: { ...input.tempo!, ablation } })
      expect(relErr(a.logits, right.logits)).toBeLessThanOrEqual(TOL)
      expect(relErr(a.logits, wrong.logits)).toBeGreaterThan(10 * TOL)
      const key = (out: { present: { key: ArrayLike<number> }[] }) => out.present[LAYERS[0]].key
      expect(relErr(key(a), key(wrong))).toBeGreaterThan(10 * TOL)
    },
  )

  it('a bank fed to the wrong layer disagrees', async () => {
    const swapped = { ...input.tempo!, bank: [...input.tempo!.bank].reverse() }
    const a = await runOrt(input)
    const wrong = forward64(C, weights, { ...input, tempo: swapped })
    expect(relErr(a.logits, wrong.logits)).toBeGreaterThan(10 * TOL)
  })
})
