/**
 * @module A small ONNX graph that gathers kept KV rows on the device where they live: the pruning
 * step of a device-resident memory (`gpu/resident.ts`) without a round trip through the host.
 * Per layer l: `kv.{l}.key|value` `[1, Hkv, T, Dh]` and `rows.{l}` int64 `[Hkv·K]` (flat row ids
 * h·T + t, per head in kept order) → `kept.{l}.key|value` `[1, Hkv, K, Dh]`. The `concat` variant
 * (a device-resident TempoFit bank) first appends `added.{l}.key|value` `[1, Hkv, S, Dh]` to each
 * head's rows, so T = M + S and row ids index the grown bank.
 */
import { attr, GraphBuilder } from '../models/onnx/builder.ts'

/** Geometry the gather graph is built for (one graph per model). */
export interface GatherShape {
  layers: number
  kvHeads: number
  headDim: number
  /** Append `added.{l}.*` to `kv.{l}.*` along the token axis before gathering. Default false. */
  concat?: boolean
}

/** Input and output names of layer `l`'s part. */
export const gatherNames = (l: number, part: 'key' | 'value') => ({ input: `kv.${l}.${part}`, added: `added.${l}.${part}`, rows: `rows.${l}`, output: `kept.${l}.${part}` })

/**
 * Builds the gather graph (opset 17: [Concat axis 2 →] Reshape → Gather axis 0 → Reshape).
 * @returns the .onnx bytes
 * @throws RangeError for a geometry that is not positive integers
 */
export function buildKvGather({ layers, kvHeads, headDim, concat = false }: GatherShape): Uint8Array {
  for (const [k, v] of Object.entries({ layers, kvHeads, headDim }))
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be an integer ≥ 1, got ${v}`)
  const g = new GraphBuilder('stepkv_kv_gather')
  const flat = g.int64([-1, headDim])
  const back = g.int64([1, kvHeads, -1, headDim])
  for (let l = 0; l < layers; l++) {
    const rows = g.input(`rows.${l}`, 'int64', ['kept_rows'])
    for (const part of ['key', 'value'] as const) {
      const n = gatherNames(l, part)
      let input = g.input(n.input, 'float32', [1, kvHeads, concat ? 'bank' : 'total', headDim])
      if (concat) input = g.op('Concat', [input, g.input(n.added, 'float32', [1, kvHeads, 'added', headDim])], { axis: attr.int(2) })
      const r = g.op('Reshape', [input, flat])
      const picked = g.op('Gather', [r, rows], { axis: attr.int(0) })
      // named directly (no Identity: ORT's WebGPU EP has none, it would run on the CPU EP)
      g.outputDirect(n.output, 'float32', [1, kvHeads, 'kept', headDim], g.op('Reshape', [picked, back]))
    }
  }
  return g.toBytes()
}
