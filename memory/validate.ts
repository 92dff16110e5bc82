/**
 * @module Invariants of a `SessionMemory`, as checks that return the first problem found (or
 * undefined), so each caller throws the error class that fits it (a corrupt blob, a bug, a model).
 */
import { TokenKind, type SessionMemory } from './types.ts'

const KIND_CODES = new Set<number>(Object.values(TokenKind))

/** True when `code` is a `TokenKind` code (0 text, 1 visual, 2 proprio). */
export function isTokenKindCode(code: number): boolean {
  return KIND_CODES.has(code)
}

/** True for a safe integer ≥ `min`. */
export function isCount(value: unknown, min = 0): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min
}

/**
 * Index of the first NaN/±Infinity in `values`, or −1 when all are finite.
 * @param values Float32Array, any shape (flat)
 */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    const x = values[i]
    if (x - x !== 0) return i // NaN − NaN and ∞ − ∞ are NaN; finite x − x is 0
  }
  return -1
}

/**
 * Scalars and array lengths: layers ≥ 1, kvHeads ≥ 1, headDim ≥ 1, tokens/nextPosition/seq ≥ 0;
 * per layer `keys`/`values` Float32Array `[kvHeads, tokens, headDim]`, `positions`/`frames`
 * Int32Array and `kinds` Uint8Array `[kvHeads, tokens]`. O(layers), reads no tensor data.
 * @returns a description of the first problem, or undefined
 */
export function shapeProblem(mem: SessionMemory): string | undefined {
  const { kvHeads, headDim, tokens } = mem
  if (!isCount(kvHeads, 1)) return `kvHeads must be an integer ≥ 1, got ${kvHeads}`
  if (!isCount(headDim, 1)) return `headDim must be an integer ≥ 1, got ${headDim}`
  if (!isCount(tokens)) return `tokens must be an integer ≥ 0, got ${tokens}`
  if (!isCount(mem.nextPosition))
    return `nextPosition must be an integer ≥ 0, got ${mem.nextPosition}`
  if (!isCount(mem.seq)) return `seq must be an integer ≥ 0, got ${mem.seq}`
  if (!Array.isArray(mem.layers) || mem.layers.length < 1) return 'memory needs at least one layer'
  const kvLength = kvHeads * tokens * headDim
  const metaLength = kvHeads * tokens
  for (let l = 0; l < mem.layers.length; l++) {
    const layer = mem.layers[l]
    const arrays = [
      ['keys', layer.keys, Float32Array, kvLength],
      ['values', layer.values, Float32Array, kvLength],
      ['positions', layer.positions, Int32Array, metaLength],
      ['frames', layer.frames, Int32Array, metaLength],
      ['kinds', layer.kinds, Uint8Array, metaLength],
    ] as const
    for (const [name, array, ctor, expected] of arrays) {
      if (!(array instanceof ctor)) return `layer ${l} ${name} must be a ${ctor.name}`
      if (array.length !== expected) {
        return `layer ${l} ${name} has ${array.length} elements, expected ${expected}`
      }
    }
  }
  return undefined
}

/**
 * Everything `shapeProblem` checks, plus the data: K/V finite; per head, positions strictly
 * increasing, ≥ 0 and < nextPosition; frames in 1 … seq; kinds valid `TokenKind` codes.
 * One pass over every tensor (use on untrusted input, e.g. a decoded blob).
 * @returns a description of the first problem, or undefined
 */
export function memoryProblem(mem: SessionMemory): string | undefined {
  const shape = shapeProblem(mem)
  if (shape) return shape
  const { kvHeads, tokens, nextPosition, seq } = mem
  for (let l = 0; l < mem.layers.length; l++) {
    const { keys, values, positions, frames, kinds } = mem.layers[l]
    for (const [name, data] of [
      ['keys', keys],
      ['values', values],
    ] as const) {
      const bad = firstNonFinite(data)
      if (bad >= 0) return `layer ${l} ${name}[${bad}] is ${data[bad]}`
    }
    for (let h = 0; h < kvHeads; h++) {
      let previous = -1
      for (let row = h * tokens; row < (h + 1) * tokens; row++) {
        const where = `layer ${l} head ${h} row ${row - h * tokens}`
        if (positions[row] <= previous) return `${where}: positions not strictly increasing`
        if (positions[row] >= nextPosition) {
          return `${where}: position ${positions[row]} ≥ nextPosition ${nextPosition}`
        }
        if (frames[row] < 1 || frames[row] > seq)
          return `${where}: frame ${frames[row]} not in 1…${seq}`
        if (!KIND_CODES.has(kinds[row])) return `${where}: unknown token kind ${kinds[row]}`
        previous = positions[row]
      }
    }
  }
  return undefined
}
