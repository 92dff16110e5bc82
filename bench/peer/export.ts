/**
 * @module A Llama-layout export of a stepkv decoder for transformers.js: the same ONNX graph and
 * weights with the policy ports taken off — `obs_window` becomes a constant initializer and only
 * `logits` and `present.{l}.key|value` stay outputs (ORT prunes the attention-statistics nodes) —
 * written as `<dir>/onnx/model.onnx` beside a `config.json` (model_type `llama`). Inputs keep their
 * names: `input_ids` (or `inputs_embeds` `[batch, seq, hidden]` for a decoder fed by a frame
 * encoder: transformers.js' decoder forward passes whichever the graph declares), `attention_mask`,
 * `position_ids`, `past_key_values.{l}.key|value`.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { ModelManifest } from '../../gpu/manifest.ts'
import { tensorProto } from '../../models/onnx/builder.ts'
import { modelProtoType } from '../../models/onnx/proto.ts'

interface NamedValue {
  name: string
}
interface GraphProto {
  input: NamedValue[]
  output: NamedValue[]
  initializer: unknown[]
}

/** Writes the export of `onnxBytes` (a stepkv decoder described by `manifest`) into `dir`.
 * @param obsWindow the constant the `obs_window` input becomes (stepkv's default window)
 * @param keepPolicyOutputs keep `attn_window.{l}`, `attn_total.{l}`, `hidden_norm.{l}` as outputs
 *   (transformers.js ignores them): the graph then computes exactly what stepkv's does
 * @returns the path of the written model.onnx */
export function exportLlama(manifest: ModelManifest, onnxBytes: Uint8Array, dir: string, obsWindow = 8, keepPolicyOutputs = false): string {
  if (manifest.ports.tempo) throw new Error(`${manifest.id}: a TempoFit decoder (tempo_* inputs) has no Llama layout`)
  const type = modelProtoType()
  const model = type.toObject(type.decode(onnxBytes), { defaults: false }) as { graph: GraphProto }
  const g = model.graph
  const keepOut = (n: string) => keepPolicyOutputs || n === 'logits' || /^present\.\d+\.(key|value)$/.test(n)
  g.output = g.output.filter((o) => keepOut(o.name))
  if (g.input.some((i) => i.name === 'obs_window')) {
    g.input = g.input.filter((i) => i.name !== 'obs_window')
    g.initializer.push(tensorProto('obs_window', { dtype: 'int64', dims: [], data: [obsWindow] }))
  }
  const bytes = type.encode(type.fromObject(model)).finish()
  mkdirSync(path.join(dir, 'onnx'), { recursive: true })
  const file = path.join(dir, 'onnx', 'model.onnx')
  writeFileSync(file, bytes)
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: manifest.vocabSize,
    hidden_size: manifest.hiddenSize,
    intermediate_size: manifest.intermediateSize,
    num_hidden_layers: manifest.layers,
    num_attention_heads: manifest.heads,
    num_key_value_heads: manifest.kvHeads,
    head_dim: manifest.headDim,
    hidden_act: 'silu',
    max_position_embeddings: manifest.maxPosition,
    rms_norm_eps: manifest.rmsNormEps,
    rope_theta: manifest.ropeBase,
    tie_word_embeddings: false,
    use_cache: true,
    bos_token_id: null,
    eos_token_id: null,
    torch_dtype: 'float32',
    'transformers.js_config': { dtype: 'fp32' },
  }
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n')
  writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ use_cache: true }, null, 2) + '\n')
  return file
}

/** `exportLlama` of a model file under models/<id>/. */
export function exportModelDir(modelsDir: string, id: string, dir: string): string {
  const manifest = JSON.parse(readFileSync(path.join(modelsDir, id, 'manifest.json'), 'utf8')) as ModelManifest
  return exportLlama(manifest, readFileSync(path.join(modelsDir, id, manifest.file)), dir)
}
