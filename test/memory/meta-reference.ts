/**
 * @module An independent writer of the version 2 metadata stream (memory/meta-codec.ts module
 * note), from the definition with plain arrays, for exact byte and size checks: LEB128 varints,
 * zigzag deltas, runs, a repeated head as marker 1, a layer equal to the previous one as no bytes.
 */
import type { SessionMemory } from '../../memory/types.ts'

/** Unsigned LEB128 of a non-negative integer < 2^32. */
export function leb128(value: number): number[] {
  const out: number[] = []
  do {
    const low = value % 128
    value = Math.floor(value / 128)
    out.push(value > 0 ? low + 128 : low)
  } while (value > 0)
  return out
}

/** Runs of equal `key(i)` over `[0, n)`: `[first index, length]` pairs. */
function runs(n: number, same: (i: number) => boolean): [number, number][] {
  const out: [number, number][] = []
  for (let i = 0; i < n; i++) {
    if (i > 0 && same(i)) out[out.length - 1][1]++
    else out.push([i, 1])
  }
  return out
}

/** One head's rows as plain arrays. */
function headRows(mem: SessionMemory, l: number, h: number) {
  const { tokens } = mem
  const layer = mem.layers[l]
  const at = (a: ArrayLike<number>) => Array.from({ length: tokens }, (_, t) => a[h * tokens + t])
  return { positions: at(layer.positions), frames: at(layer.frames), kinds: at(layer.kinds) }
}

const sameHead = (a: ReturnType<typeof headRows>, b: ReturnType<typeof headRows>) =>
  JSON.stringify(a) === JSON.stringify(b)

/** The `layers.{l}.meta` bytes of a memory, written from the definition. */
export function referenceMeta(mem: SessionMemory, l: number): number[] {
  const { kvHeads, tokens } = mem
  if (tokens === 0) return []
  const heads = Array.from({ length: kvHeads }, (_, h) => headRows(mem, l, h))
  if (l > 0) {
    const before = Array.from({ length: kvHeads }, (_, h) => headRows(mem, l - 1, h))
    if (heads.every((head, h) => sameHead(head, before[h]))) return []
  }
  const out: number[] = []
  heads.forEach((head, h) => {
    if (h > 0 && sameHead(head, heads[h - 1])) return void out.push(1)
    out.push(0)
    let end = -1
    for (const [i, n] of runs(tokens, (i) => head.positions[i] === head.positions[i - 1] + 1)) {
      out.push(...leb128(head.positions[i] - end - 1), ...leb128(n))
      end = head.positions[i + n - 1]
    }
    let frame = 0
    for (const [i, n] of runs(tokens, (i) => head.frames[i] === head.frames[i - 1])) {
      const delta = head.frames[i] - frame
      out.push(...leb128(delta >= 0 ? 2 * delta : -2 * delta - 1), ...leb128(n))
      frame = head.frames[i]
    }
    for (const [i, n] of runs(tokens, (i) => head.kinds[i] === head.kinds[i - 1]))
      out.push(...leb128(head.kinds[i]), ...leb128(n))
  })
  return out
}
