/**
 * @module Pinned tokens: rows whose kind code carries the `PINNED` bit (e.g. the task instruction).
 * Every selecting policy keeps them, and they count toward its budget; the shared selector
 * (select.ts) applies this, so a scorer never needs to know about pins.
 */
import { PINNED, type SessionMemory } from '../types.ts'

/** True when a stored kind code has the `PINNED` bit. */
export function isPinned(kind: number): boolean {
  return (kind & PINNED) !== 0
}

/**
 * Pinned rows of one head.
 * @param kinds Uint8Array `[kvHeads, tokens]` of one layer
 * @returns the number of rows of head `head` whose kind has the PINNED bit
 */
export function pinnedInHead(kinds: Uint8Array, head: number, tokens: number): number {
  let pinned = 0
  for (let t = head * tokens; t < (head + 1) * tokens; t++) if (kinds[t] & PINNED) pinned++
  return pinned
}

/** The most pinned rows of any head of any layer (0 when nothing is pinned). */
export function maxPinnedRows(mem: SessionMemory): number {
  let most = 0
  for (const { kinds } of mem.layers) {
    for (let h = 0; h < mem.kvHeads; h++) most = Math.max(most, pinnedInHead(kinds, h, mem.tokens))
  }
  return most
}

/**
 * Rows per head a selection with `budgetTokens` keeps: `min(tokens, max(budgetTokens, pins))`,
 * pins = `maxPinnedRows(mem)`. Pins count toward the budget; when they alone exceed it, every pin
 * is kept and the memory holds more than `budgetTokens` rows (the only way a policy overflows).
 * Every head keeps the same count, so a head with fewer pins fills the rest by score.
 * @param budgetTokens rows to keep per head (tokens, ≥ 0)
 */
export function keptTokens(mem: SessionMemory, budgetTokens: number): number {
  if (mem.tokens <= budgetTokens) return mem.tokens
  return Math.min(mem.tokens, Math.max(budgetTokens, maxPinnedRows(mem)))
}
