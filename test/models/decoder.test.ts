/**
 * @module The generated 'tiny-gqa' model: reproducible bytes, and ORT-web (wasm) agreeing with the
 * independent float64 reference on logits, present K/V and the policy ports.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import type { ModelManifest } from '../../gpu/manifest.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { TINY_GQA as C, TINY_GQA_SEED } from '../../models/decoder/config.ts'
import { buildDecoderOnnx } from '../../models/decoder/graph.ts'
import { generateWeights, mulberry32 } from '../../models/decoder/weights.ts'
import { forward64, type Forward64Input } from '../reference/decoder64.ts'
import { relErr, runStep, TOL, worstErr } from './harness.ts'

const dir = new URL('../../models/tiny-gqa/', import.meta.url)
const modelBytes = readFileSync(new URL('model.onnx', dir))
const manifest: ModelManifest = JSON.parse(readFileSync(new URL('manifest.json', dir), 'utf8'))
const weights = generateWeights(C, TINY_GQA_SEED)
const ort = ortForNode()
let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>
const runOrt = (input: Forward64Input) => runStep(ort, session, C, input)

/** Runs ORT and the reference on the same step and checks every output within TOL. */
async function expectAgree(input: Forward64Input, refPast = input.past) {
  const [a, b] = [await runOrt(input), forward64(C, weights, { ...input, past: refPast })]
  for (const [name, err] of Object.entries(worstErr(a, b))) {
    expect(err, `${name} relErr ${err}`).toBeLessThanOrEqual(TOL)
  }
  return { ort: a, ref: b }
}

const random = mulberry32(7)
const tokens = (n: number) => Array.from({ length: n }, () => Math.floor(random() * C.vocabSize))
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i)
const ones = (n: number) => new Array<number>(n).fill(1)
/** A first step: S fresh random tokens at positions from…from+S−1, empty past, no masking. */
const firstStep = (S: number, from = 0, obsWindow?: number): Forward64Input => ({
  inputIds: tokens(S),
  positionIds: range(from, S),
  attentionMask: ones(S),
  past: [],
  obsWindow,
})

/** Keeps the tokens `keep` of each layer's K/V [kvHeads, T, headDim] (an eviction). */
function keepTokens<A extends Float32Array | Float64Array>(kv: A, keep: number[]): Float32Array {
  const T = kv.length / (C.kvHeads * C.headDim)
  const out = new Float32Array(C.kvHeads * keep.length * C.headDim)
  for (let h = 0; h < C.kvHeads; h++) {
    keep.forEach((j, n) => {
      const from = (h * T + j) * C.headDim
      out.set(kv.subarray(from, from + C.headDim), (h * keep.length + n) * C.headDim)
    })
  }
  return out
}

beforeAll(async () => {
  session = await ort.InferenceSession.create(modelBytes)
})

describe('tiny-gqa model file', () => {
  it('keeps its pre-TempoFit bytes: sha256 pinned, tempoLayers [] changes nothing', () => {
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
    const pinned = '88426744907378d86137e7e6de2c30ba5db0abcadae1cb3c51184c163178fc7a'
    expect(manifest.sha256).toBe(pinned)
    const withEmpty = buildDecoderOnnx({ ...C, tempoLayers: [] }, weights)
    expect(sha(withEmpty)).toBe(pinned)
    expect(manifest.ports.tempo).toBe(false)
    expect(manifest.tempoLayers).toEqual([])
  })

  it('rebuilds from config + seed to the committed bytes and manifest sha256', () => {
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')
    const rebuilt = buildDecoderOnnx(C, generateWeights(C, TINY_GQA_SEED))
    expect(sha(rebuilt)).toBe(manifest.sha256)
    expect(sha(modelBytes)).toBe(manifest.sha256)
    expect(modelBytes.length).toBeLessThan(1 << 20)
  })

  it('declares the contract names the manifest lists', () => {
    expect([...session.inputNames].sort()).toEqual(manifest.inputs.map((p) => p.name).sort())
    expect([...session.outputNames].sort()).toEqual(manifest.outputs.map((p) => p.name).sort())
  })
})

describe('ORT-web vs float64 reference', () => {
  it.each([1, 3, 8, 17])('first step (empty past), %i fresh random tokens', async (S) => {
    await expectAgree(firstStep(S, 0, 1 + Math.floor(random() * S)))
  })

  it('continues from a past produced by the previous call', async () => {
    const first = await expectAgree(firstStep(6, 0, 2))
    const step = {
      inputIds: tokens(4),
      positionIds: range(6, 4),
      attentionMask: ones(10),
      obsWindow: 3,
    }
    await expectAgree({ ...step, past: first.ort.present }, first.ref.present)
  })

  it('masks keys with attention_mask 0 (no attention mass reaches them)', async () => {
    const first = await runOrt(firstStep(6))
    const mask = [1, 1, 0, 1, 0, 1, 1, 1, 1]
    const step = {
      inputIds: tokens(3),
      positionIds: range(6, 3),
      attentionMask: mask,
      past: first.present,
      obsWindow: 2,
    }
    const { ort: masked } = await expectAgree(step)
    for (const total of masked.attnTotal)
      for (const h of [0, 1]) expect(total[h * 9 + 2]).toBeLessThan(1e-12)
    const unmasked = await runOrt({ ...step, attentionMask: ones(9) })
    expect(relErr(masked.logits, unmasked.logits)).toBeGreaterThan(100 * TOL)
  })

  it('keeps absolute positions after an eviction: past [0,1,2,7,8], new tokens at 20..24', async () => {
    const first = await runOrt(firstStep(9))
    const keep = [0, 1, 2, 7, 8]
    const past = first.present.map((kv) => ({
      key: keepTokens(kv.key, keep),
      value: keepTokens(kv.value, keep),
    }))
    await expectAgree({
      inputIds: tokens(5),
      positionIds: range(20, 5),
      attentionMask: ones(10),
      past,
      obsWindow: 4,
    })
  })

  it('stays accurate near maxPosition (RoPE angles in float64)', async () => {
    await expectAgree(firstStep(6, C.maxPosition - 6, 2))
  })

  it('obs_window 0 gives zero window mass; obs_window ≥ seq equals attn_total', async () => {
    const input = firstStep(5)
    const none = await runOrt({ ...input, obsWindow: 0 })
    const all = await runOrt({ ...input, obsWindow: 9 })
    for (let l = 0; l < C.layers; l++) {
      expect(Math.max(...none.attnWindow[l])).toBe(0)
      expect(relErr(all.attnWindow[l], all.attnTotal[l])).toBeLessThan(1e-6)
    }
  })
})

describe('the comparison can fail', () => {
  it('different inputs give logits far apart', async () => {
    const base = firstStep(4)
    const a = await runOrt({ ...base, inputIds: [10, 20, 30, 40] })
    const b = await runOrt({ ...base, inputIds: [10, 20, 30, 41] })
    expect(relErr(a.logits, b.logits)).toBeGreaterThan(1000 * TOL)
  })

  it('a reference with one perturbed weight disagrees with ORT', async () => {
    const input = firstStep(5)
    const perturbed = structuredClone(weights)
    perturbed.layers[1].wk[17] += 0.2
    const a = await runOrt(input)
    expect(relErr(a.logits, forward64(C, perturbed, input).logits)).toBeGreaterThan(10 * TOL)
    expect(relErr(a.logits, forward64(C, weights, input).logits)).toBeLessThanOrEqual(TOL)
  })
})
