/**
 * @module `gatherTokens`: keep chosen rows of every head of a `SessionMemory` — the primitive
 * under every carried-KV policy (window, SnapKV, H2O, …). Positions stay absolute.
 */
import type { LayerMemory, SessionMemory } from './types.ts'
import { shapeProblem } from './validate.ts'

/**
 * Keep some rows of every head (the selection primitive under every carried-KV policy).
 * @param keep per layer Int32Array `[kvHeads, budget]`: row indices into `[0, tokens)`, strictly
 *   ascending per head (memory order = append order is kept); the same budget everywhere
 * @returns a new memory of `budget` tokens (K/V, positions, frames, kinds and carried `scores`
 *   gathered alike); nextPosition, seq and layerIds unchanged, positions absolute
 * @throws RangeError if the memory is malformed, the layer count or budgets disagree, or an
 *   index is out of range or not ascending (layer and head named)
 */
export function gatherTokens(mem: SessionMemory, keep: readonly Int32Array[]): SessionMemory {
  const malformed = shapeProblem(mem)
  if (malformed) throw new RangeError(`malformed memory: ${malformed}`)
  const { kvHeads, headDim, tokens } = mem
  if (keep.length !== mem.layers.length) {
    throw new RangeError(`keep has ${keep.length} layers, memory has ${mem.layers.length}`)
  }
  const budget = keep[0].length / kvHeads
  const layers = mem.layers.map((old, l): LayerMemory => {
    const rows = keep[l]
    if (
      !(rows instanceof Int32Array) ||
      rows.length !== kvHeads * budget ||
      !Number.isInteger(budget)
    ) {
      throw new RangeError(
        `keep[${l}] must be an Int32Array [kvHeads ${kvHeads}, budget ${budget}]`,
      )
    }
    const layer: LayerMemory = {
      keys: new Float32Array(kvHeads * budget * headDim),
      values: new Float32Array(kvHeads * budget * headDim),
      positions: new Int32Array(kvHeads * budget),
      frames: new Int32Array(kvHeads * budget),
      kinds: new Uint8Array(kvHeads * budget),
    }
    if (old.scores) layer.scores = new Float32Array(kvHeads * budget)
    for (let h = 0; h < kvHeads; h++) {
      for (let j = 0; j < budget; ) {
        // Copy each run of consecutive rows with one set() (windows keep long runs).
        const first = rows[h * budget + j]
        let end = j + 1
        while (end < budget && rows[h * budget + end] === rows[h * budget + end - 1] + 1) end++
        const last = rows[h * budget + end - 1]
        const previous = j > 0 ? rows[h * budget + j - 1] : -1
        if (first <= previous || first < 0 || last >= tokens) {
          throw new RangeError(
            `keep[${l}] head ${h}: indices must ascend strictly within [0, ${tokens})`,
          )
        }
        const [src, dst, count] = [h * tokens + first, h * budget + j, end - j]
        for (const part of ['keys', 'values'] as const) {
          const source = old[part].subarray(src * headDim, (src + count) * headDim)
          layer[part].set(source, dst * headDim)
        }
        for (const part of ['positions', 'frames', 'kinds'] as const) {
          layer[part].set(old[part].subarray(src, src + count) as never, dst)
        }
        if (old.scores) layer.scores!.set(old.scores.subarray(src, src + count), dst)
        j = end
      }
    }
    return layer
  })
  return { ...mem, layers, tokens: budget }
}
