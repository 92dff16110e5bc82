/**
 * @module train/model.py (the torch decoder the trained policies are exported from) has the
 * semantics of stepkv's float64 reference (test/reference/decoder64.ts): masking, RoPE, GQA,
 * attn_window/attn_total, hidden_norm, TempoFit retrieval. test/fixtures/train-reference.json
 * (train/reference_fixture.py) holds a tiny random-weight torch decoder's weights and its float64
 * outputs; inputs_embeds enter the reference as rows of its embedding table.
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { DecoderConfig } from '../../models/decoder/config.ts'
import type { DecoderWeights } from '../../models/decoder/weights.ts'
import { forward64, type Forward64Output } from '../reference/decoder64.ts'
import { relErr } from '../models/harness.ts'
import { fixtureF32, type FixtureTensor } from './fixture-tensor.ts'

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..')
const fixture = JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/train-reference.json'), 'utf8'))


const config: DecoderConfig = fixture.config
const w = fixture.weights
const weights: DecoderWeights = {
  embed: fixtureF32(w.embed),
  layers: w.layers.map((l: Record<string, FixtureTensor>) =>
    Object.fromEntries(Object.entries(l).map(([k, v]) => [k, fixtureF32(v)])),
  ),
  finalNorm: fixtureF32(w.finalNorm),
  lmHead: fixtureF32(w.lmHead),
}

describe('train/model.py agrees with the float64 reference decoder', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const cases: [string, any][] = fixture.cases.map((c: { name: string }) => [c.name, c])
  it.each(cases)('%s step', (_name, c) => {
    const S = c.positionIds.length
    const out: Forward64Output = forward64(config, weights, {
      inputIds: Array.from({ length: S }, (_, i) => i),
      positionIds: c.positionIds,
      attentionMask: c.attentionMask,
      past: c.past.map((kv: { key: FixtureTensor; value: FixtureTensor }) => ({ key: fixtureF32(kv.key), value: fixtureF32(kv.value) })),
      obsWindow: c.obsWindow,
      tempo: c.tempo
        ? {
            layers: c.tempo.layers,
            bank: c.tempo.bank.map((kv: { key: FixtureTensor; value: FixtureTensor }) => ({ key: fixtureF32(kv.key), value: fixtureF32(kv.value) })),
            bias: fixtureF32(c.tempo.bias),
          }
        : undefined,
    })
    const want = (name: string) => fixtureF32(c.outputs[name])
    const errors: Record<string, number> = { logits: relErr(out.logits, want('logits')) }
    for (let l = 0; l < config.layers; l++) {
      errors[`present.${l}.key`] = relErr(out.present[l].key, want(`present.${l}.key`))
      errors[`present.${l}.value`] = relErr(out.present[l].value, want(`present.${l}.value`))
      errors[`attn_window.${l}`] = relErr(out.attnWindow![l], want(`attn_window.${l}`))
      errors[`attn_total.${l}`] = relErr(out.attnTotal[l], want(`attn_total.${l}`))
      errors[`hidden_norm.${l}`] = relErr(out.hiddenNorm[l], want(`hidden_norm.${l}`))
    }
    ;(c.tempo?.layers ?? []).forEach((l: number, i: number) => {
      errors[`tempo_prefix.${l}.key`] = relErr(out.tempoPrefix![i].key, want(`tempo_prefix.${l}.key`))
      errors[`tempo_prefix.${l}.value`] = relErr(out.tempoPrefix![i].value, want(`tempo_prefix.${l}.value`))
    })
    const bad = Object.entries(errors).filter(([, e]) => !(e <= 1e-5))
    expect(bad).toEqual([])
  })
})
