/**
 * @module Shared helpers of the model tests: the agreement measure, one ORT-web step of a generated
 * decoder (batch 1, TempoFit feeds included when the model has them) and the per-output errors
 * against the float64 reference.
 */
import { expect } from 'vitest'
import type { Ort } from '../../gpu/ort-node.ts'
import type { DecoderConfig } from '../../models/decoder/config.ts'
import type { Forward64Input, Forward64Output } from '../reference/decoder64.ts'

/** The agreement bound of the model tests (relErr). */
export const TOL = 1e-4

/** max|a − b| / max(1, max|b|): the agreement measure of these tests. */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length)
  let diff = 0
  let scale = 1
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]))
    scale = Math.max(scale, Math.abs(b[i]))
  }
  return diff / scale
}

/** ORT outputs of one step, batch 1, flattened like Forward64Output. */
export interface OrtStep {
  logits: Float32Array
  present: { key: Float32Array; value: Float32Array }[]
  attnWindow: Float32Array[]
  attnTotal: Float32Array[]
  hiddenNorm: Float32Array[]
  /** Per memory layer (order of config.tempoLayers) [kvHeads, S, headDim]; [] without TempoFit. */
  tempoPrefix: { key: Float32Array; value: Float32Array }[]
}

type Session = Awaited<ReturnType<Ort['InferenceSession']['create']>>

/** Runs `session` (a model built from `c`) on one step; past tensors are [kvHeads, P, headDim].
 * For a TempoFit model, `input.tempo` feeds tempo.{l}.key|value [1, kvHeads, M, headDim] and
 * tempo_bias [1, kvHeads, 1, M]; without it the bank is empty (M = 0). */
export async function runStep(
  ort: Ort,
  session: Session,
  c: DecoderConfig,
  input: Forward64Input,
): Promise<OrtStep> {
  const i64 = (v: number[], dims: number[]) =>
    new ort.Tensor('int64', BigInt64Array.from(v, BigInt), dims)
  const f32 = (v: ArrayLike<number>, dims: number[]) =>
    new ort.Tensor('float32', Float32Array.from(v), dims)
  const { kvHeads: Hkv, headDim: Dh } = c
  const S = input.inputIds.length
  const P = input.attentionMask.length - S
  const feeds: Record<string, InstanceType<Ort['Tensor']>> = {
    input_ids: i64(input.inputIds, [1, S]),
    position_ids: i64(input.positionIds, [1, S]),
    attention_mask: i64(input.attentionMask, [1, P + S]),
    obs_window: i64([input.obsWindow ?? S], []),
  }
  for (let l = 0; l < c.layers; l++) {
    for (const part of ['key', 'value'] as const) {
      feeds[`past_key_values.${l}.${part}`] = f32(input.past[l]?.[part] ?? [], [1, Hkv, P, Dh])
    }
  }
  const tempoLayers = c.tempoLayers ?? []
  if (tempoLayers.length) {
    const t = input.tempo
    if (t) expect(t.layers).toEqual([...tempoLayers])
    const M = t ? t.bias.length / Hkv : 0
    tempoLayers.forEach((l, n) => {
      for (const part of ['key', 'value'] as const) {
        feeds[`tempo.${l}.${part}`] = f32(t?.bank[n][part] ?? [], [1, Hkv, M, Dh])
      }
    })
    feeds.tempo_bias = f32(t?.bias ?? [], [1, Hkv, 1, M])
  }
  const out = await session.run(feeds)
  const get = (name: string) => out[name].data as Float32Array
  const layers = Array.from({ length: c.layers }, (_, l) => l)
  return {
    logits: get('logits'),
    present: layers.map((l) => ({
      key: get(`present.${l}.key`),
      value: get(`present.${l}.value`),
    })),
    attnWindow: layers.map((l) => get(`attn_window.${l}`)),
    attnTotal: layers.map((l) => get(`attn_total.${l}`)),
    hiddenNorm: layers.map((l) => get(`hidden_norm.${l}`)),
    tempoPrefix: tempoLayers.map((l) => ({
      key: get(`tempo_prefix.${l}.key`),
      value: get(`tempo_prefix.${l}.value`),
    })),
  }
}

/** Largest relErr of every output (per layer for the per-layer ones; tempoPrefix only when the
 * reference has it). */
export function worstErr(a: OrtStep, b: Forward64Output): Record<string, number> {
  const max = (n: number, f: (l: number) => number) =>
    Math.max(0, ...Array.from({ length: n }, (_, l) => f(l)))
  const L = a.present.length
  const errs: Record<string, number> = {
    logits: relErr(a.logits, b.logits),
    key: max(L, (l) => relErr(a.present[l].key, b.present[l].key)),
    value: max(L, (l) => relErr(a.present[l].value, b.present[l].value)),
    attnWindow: max(L, (l) => relErr(a.attnWindow[l], b.attnWindow![l])),
    attnTotal: max(L, (l) => relErr(a.attnTotal[l], b.attnTotal[l])),
    hiddenNorm: max(L, (l) => relErr(a.hiddenNorm[l], b.hiddenNorm[l])),
  }
  if (b.tempoPrefix) {
    const n = b.tempoPrefix.length
    expect(a.tempoPrefix.length).toBe(n)
    errs.tempoPrefixKey = max(n, (i) => relErr(a.tempoPrefix[i].key, b.tempoPrefix![i].key))
    errs.tempoPrefixValue = max(n, (i) => relErr(a.tempoPrefix[i].value, b.tempoPrefix![i].value))
  }
  return errs
}
