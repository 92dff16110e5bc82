/**
 * The peer bench's Llama-layout export (`bench/peer/export.ts`) must be the same network as the
 * model it comes from: run side by side in onnxruntime-web on the same random inputs — a prefill of
 * 7 tokens after 5 past tokens, `inputs_embeds` for the GUI decoder, `input_ids` for tiny-gqa — the
 * export's logits and `present.*` K/V must equal the original's (the original's `obs_window` fed the
 * constant the export bakes in), its outputs must be only those (or the policy ports too, when
 * kept), and its config.json must describe the manifest's shape. transformers.js itself is not
 * installed for the tests (bench/peer has its own install); the bench checks parity with it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { exportLlama } from '../../bench/peer/export.ts'
import { nodeModelSource } from '../../gpu/node-models.ts'
import { ortForNode } from '../../gpu/ort-node.ts'

const ort = ortForNode()
const dir = mkdtempSync(path.join(os.tmpdir(), 'stepkv-export-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Deterministic values in [−1, 1). */
function noise(n: number, seed: number): Float32Array {
  let x = seed >>> 0
  return Float32Array.from({ length: n }, () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 31) - 1)
}

describe.each(['gui-carried', 'tiny-gqa'])('exportLlama(%s)', (id) => {
  const source = nodeModelSource(id)
  const m = source.manifest
  const [P, S, W] = [5, 7, 3]

  async function feeds() {
    const f: Record<string, InstanceType<typeof ort.Tensor>> = {
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(P + i)), [1, S]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(P + S).fill(1n), [1, P + S]),
    }
    if (m.ports.inputsEmbeds) f.inputs_embeds = new ort.Tensor('float32', noise(S * m.hiddenSize, 1), [1, S, m.hiddenSize])
    else f.input_ids = new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt((i * 11 + 3) % m.vocabSize)), [1, S])
    for (let l = 0; l < m.layers; l++)
      for (const part of ['key', 'value'])
        f[`past_key_values.${l}.${part}`] = new ort.Tensor('float32', noise(m.kvHeads * P * m.headDim, 100 + 2 * l + (part === 'key' ? 0 : 1)), [1, m.kvHeads, P, m.headDim])
    return f
  }

  it('computes the same logits and present K/V as the original, with only those outputs', async () => {
    const bytes = await source.bytes()
    const file = exportLlama(m, bytes, path.join(dir, id), W)
    const original = await ort.InferenceSession.create(bytes)
    const exported = await ort.InferenceSession.create(readFileSync(file))
    const want = [...(m.ports.inputsEmbeds ? ['inputs_embeds'] : ['input_ids']), 'position_ids', 'attention_mask']
    expect(exported.inputNames).toEqual(expect.arrayContaining(want))
    expect(exported.inputNames).not.toContain('obs_window')
    expect([...exported.outputNames].sort()).toEqual(['logits', ...Array.from({ length: m.layers }, (_, l) => [`present.${l}.key`, `present.${l}.value`]).flat()].sort())
    const f = await feeds()
    const a = await original.run({ ...f, obs_window: new ort.Tensor('int64', BigInt64Array.from([BigInt(W)]), []) })
    const b = await exported.run(f)
    expect(b.logits.dims).toEqual([1, S, m.vocabSize])
    for (const name of exported.outputNames) expect(b[name].data).toEqual(a[name].data)
    const config = JSON.parse(readFileSync(path.join(dir, id, 'config.json'), 'utf8'))
    expect(config).toMatchObject({
      model_type: 'llama',
      hidden_size: m.hiddenSize,
      num_hidden_layers: m.layers,
      num_attention_heads: m.heads,
      num_key_value_heads: m.kvHeads,
      head_dim: m.headDim,
      vocab_size: m.vocabSize,
      rope_theta: m.ropeBase,
    })
  })

  it('keeps the policy ports when asked, equal to the original with the same window', async () => {
    const bytes = await source.bytes()
    const file = exportLlama(m, bytes, path.join(dir, `${id}-ports`), W, true)
    const original = await ort.InferenceSession.create(bytes)
    const exported = await ort.InferenceSession.create(readFileSync(file))
    expect([...exported.outputNames].sort()).toEqual([...original.outputNames].sort())
    const f = await feeds()
    const a = await original.run({ ...f, obs_window: new ort.Tensor('int64', BigInt64Array.from([BigInt(W)]), []) })
    const other = await original.run({ ...f, obs_window: new ort.Tensor('int64', BigInt64Array.from([BigInt(W + 2)]), []) })
    const b = await exported.run(f)
    for (const name of exported.outputNames) expect(b[name].data).toEqual(a[name].data)
    // The window is baked in: another window gives other attention statistics.
    expect(b['attn_window.0'].data).not.toEqual(other['attn_window.0'].data)
  })
})

it('refuses a TempoFit decoder (its tempo_* inputs have no Llama layout)', async () => {
  const source = nodeModelSource('gui-tempo')
  expect(() => exportLlama(source.manifest, new Uint8Array(0), path.join(dir, 'tempo'))).toThrow(/TempoFit/)
})
