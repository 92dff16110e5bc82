/**
 * @module A small ONNX graph that gathers kept KV rows on the device where they live: the pruning
 * step of a device-resident memory (`gpu/resident.ts`) without a round trip through the host.
 * Per layer l: `kv.{l}.key|value` `[1, Hkv, T, Dh]` and `rows.{l}` int64 `[Hkv·K]` (flat row ids
 * h·T + t, per head in kept order) → `kept.{l}.key|value` `[1, Hkv, K, Dh]`.
 */
import { attr, GraphBuilder } from '../models/onnx/builder.ts'

/** Geometry the gather graph is built for (one graph per model). */
export interface GatherShape {
  layers: number
  kvHeads: number
  headDim: number
}

/** Input and output names of layer `l`'s part. */
export const gatherNames = (l: number, part: 'key' | 'value') => ({ input: `kv.${l}.${part}`, rows: `rows.${l}`, output: `kept.${l}.${part}` })

/**
 * Builds the gather graph (opset 17: Reshape → Gather axis 0 → Reshape).
 * @returns the .onnx bytes
 * @throws RangeError for a geometry that is not positive integers
 */
export function buildKvGather({ layers, kvHeads, headDim }: GatherShape): Uint8Array {
  for (const [k, v] of Object.entries({ layers, kvHeads, headDim }))
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${k} must be an integer ≥ 1, got ${v}`)
  const g = new GraphBuilder('stepkv_kv_gather')
  const flat = g.int64([-1, headDim])
  const back = g.int64([1, kvHeads, -1, headDim])
  for (let l = 0; l < layers; l++) {
    const rows = g.input(`rows.${l}`, 'int64', ['kept_rows'])
    for (const part of ['key', 'value'] as const) {
      const n = gatherNames(l, part)
      const input = g.input(n.input, 'float32', [1, kvHeads, `total`, headDim])
      const r = g.op('Reshape', [input, flat])
      const picked = g.op('Gather', [r, rows], { axis: attr.int(0) })
      g.output(n.output, 'float32', [1, kvHeads, 'kept', headDim], g.op('Reshape', [picked, back]))
    }
  }
  return g.toBytes()
}
