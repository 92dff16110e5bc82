/**
 * @module `npm run build:model`: generates the test models from their config and seed and writes
 * models/<id>/model.onnx and models/<id>/manifest.json (with the .onnx sha256): 'tiny-gqa' and
 * 'tiny-gqa-tempo' (the same weights with TempoFit ports at layers [1, 2]).
 */
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ModelManifest, PortSpec } from '../gpu/manifest.ts'
import {
  TINY_GQA,
  TINY_GQA_SEED,
  TINY_GQA_TEMPO,
  type DecoderConfig,
} from '../models/decoder/config.ts'
import { buildDecoderOnnx } from '../models/decoder/graph.ts'
import { TEMPO_BIAS, tempoBankNames, tempoPrefixNames } from '../models/decoder/tempo.ts'
import { generateWeights } from '../models/decoder/weights.ts'

/** The graph's inputs and outputs, in buildDecoderOnnx's order (symbolic dims by name; TempoFit's
 * bank length is `memory`). */
function ports(c: DecoderConfig): { inputs: PortSpec[]; outputs: PortSpec[] } {
  const tempoLayers = c.tempoLayers ?? []
  const kv = ['batch', c.kvHeads, 'past', c.headDim]
  const inputs: PortSpec[] = [
    { name: 'input_ids', dtype: 'int64', dims: ['batch', 'seq'] },
    { name: 'position_ids', dtype: 'int64', dims: ['batch', 'seq'] },
    { name: 'attention_mask', dtype: 'int64', dims: ['batch', 'total'] },
  ]
  const outputs: PortSpec[] = [
    { name: 'logits', dtype: 'float32', dims: ['batch', 'seq', c.vocabSize] },
  ]
  for (let l = 0; l < c.layers; l++) {
    for (const part of ['key', 'value']) {
      inputs.push({ name: `past_key_values.${l}.${part}`, dtype: 'float32', dims: kv })
    }
  }
  // obs_window: an int64 scalar (dims []), the number w of last queries attn_window sums over.
  inputs.push({ name: 'obs_window', dtype: 'int64', dims: [] })
  for (const l of tempoLayers) {
    const bank = tempoBankNames(l)
    const dims = ['batch', c.kvHeads, 'memory', c.headDim]
    inputs.push(
      { name: bank.key, dtype: 'float32', dims },
      { name: bank.value, dtype: 'float32', dims },
    )
  }
  if (tempoLayers.length) {
    inputs.push({ name: TEMPO_BIAS, dtype: 'float32', dims: ['batch', c.kvHeads, 1, 'memory'] })
  }
  for (let l = 0; l < c.layers; l++) {
    const present = ['batch', c.kvHeads, 'total', c.headDim]
    outputs.push(
      { name: `present.${l}.key`, dtype: 'float32', dims: present },
      { name: `present.${l}.value`, dtype: 'float32', dims: present },
      { name: `attn_window.${l}`, dtype: 'float32', dims: ['batch', c.kvHeads, 'total'] },
      { name: `attn_total.${l}`, dtype: 'float32', dims: ['batch', c.kvHeads, 'total'] },
      { name: `hidden_norm.${l}`, dtype: 'float32', dims: ['batch', 'seq'] },
    )
    if (tempoLayers.includes(l)) {
      const prefix = tempoPrefixNames(l)
      const dims = ['batch', c.kvHeads, 'seq', c.headDim]
      outputs.push(
        { name: prefix.key, dtype: 'float32', dims },
        { name: prefix.value, dtype: 'float32', dims },
      )
    }
  }
  return { inputs, outputs }
}

/** The manifest of a generated decoder whose .onnx bytes are `bytes` (`ports.tempo` and
 * `tempoLayers` from `c.tempoLayers`).
 * @see TempoFit, arXiv:2603.07647 */
export function decoderManifest(
  id: string,
  c: DecoderConfig,
  seed: number,
  bytes: Uint8Array,
): ModelManifest {
  return {
    id,
    file: 'model.onnx',
    sha256: createHash('sha256').update(bytes).digest('hex'),
    architecture: 'decoder',
    layers: c.layers,
    heads: c.heads,
    kvHeads: c.kvHeads,
    headDim: c.headDim,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    vocabSize: c.vocabSize,
    ropeBase: c.ropeBase,
    rmsNormEps: c.rmsNormEps,
    maxPosition: c.maxPosition,
    tokenizer: { kind: 'bytes' },
    ...ports(c),
    ports: {
      inputIds: true,
      inputsEmbeds: false,
      obsWindow: true,
      attnWindow: true,
      attnTotal: true,
      hiddenNorm: true,
      tempo: (c.tempoLayers ?? []).length > 0,
    },
    tempoLayers: [...(c.tempoLayers ?? [])],
    provenance: { generator: 'scripts/build-model.ts (synthetic weights, mulberry32)', seed },
  }
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
/** The generated models: id → config, all from TINY_GQA_SEED (the same weights). */
const MODELS: [id: string, config: DecoderConfig][] = [
  ['tiny-gqa', TINY_GQA],
  ['tiny-gqa-tempo', TINY_GQA_TEMPO],
]

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const [id, config] of MODELS) {
    const bytes = buildDecoderOnnx(config, generateWeights(config, TINY_GQA_SEED))
    const dir = join(root, 'models', id)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'model.onnx'), bytes)
    const manifest = decoderManifest(id, config, TINY_GQA_SEED, bytes)
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
    console.log(`wrote ${dir}/model.onnx (${bytes.length} bytes, sha256 ${manifest.sha256})`)
  }
}
