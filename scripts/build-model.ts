/**
 * @module `npm run build:model`: generates the 'tiny-gqa' test model from its config and seed and
 * writes models/tiny-gqa/model.onnx and models/tiny-gqa/manifest.json (with the .onnx sha256).
 */
import { createHash } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ModelManifest, PortSpec } from '../gpu/manifest.ts'
import { TINY_GQA, TINY_GQA_SEED, type DecoderConfig } from '../models/decoder/config.ts'
import { buildDecoderOnnx } from '../models/decoder/graph.ts'
import { generateWeights } from '../models/decoder/weights.ts'

/** The graph's inputs and outputs, as buildDecoderOnnx declares them (symbolic dims by name). */
function ports(c: DecoderConfig): { inputs: PortSpec[]; outputs: PortSpec[] } {
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
  for (let l = 0; l < c.layers; l++) {
    const present = ['batch', c.kvHeads, 'total', c.headDim]
    outputs.push(
      { name: `present.${l}.key`, dtype: 'float32', dims: present },
      { name: `present.${l}.value`, dtype: 'float32', dims: present },
      { name: `attn_window.${l}`, dtype: 'float32', dims: ['batch', c.kvHeads, 'total'] },
      { name: `attn_total.${l}`, dtype: 'float32', dims: ['batch', c.kvHeads, 'total'] },
      { name: `hidden_norm.${l}`, dtype: 'float32', dims: ['batch', 'seq'] },
    )
  }
  return { inputs, outputs }
}

/** The manifest of a generated decoder whose .onnx bytes are `bytes`. */
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
      tempo: false,
    },
    tempoLayers: [],
    provenance: { generator: 'scripts/build-model.ts (synthetic weights, mulberry32)', seed },
  }
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const bytes = buildDecoderOnnx(TINY_GQA, generateWeights(TINY_GQA, TINY_GQA_SEED))
  const dir = join(root, 'models', 'tiny-gqa')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'model.onnx'), bytes)
  const manifest = decoderManifest('tiny-gqa', TINY_GQA, TINY_GQA_SEED, bytes)
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
  console.log(`wrote ${dir}/model.onnx (${bytes.length} bytes, sha256 ${manifest.sha256})`)
}
