/**
 * @module Seeded randomness: mulberry32 plus a few helpers. No Math.random anywhere in the
 * simulator; an episode is a pure function of (task, seed).
 */

/** A generator of floats in [0, 1). */
export type Rng = () => number

/** mulberry32 (Tommy Ettinger): a 32-bit state PRNG, fast and good enough for layouts. */
export function mulberry32(seed: number): Rng {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * An independent stream for one purpose of one seed: FNV-1a over the seed's 4 bytes and the
 * label, then mulberry32. Streams with different labels (e.g. 'layout', 'secret') do not
 * affect each other, so a task can change its secret without moving anything else.
 */
export function stream(seed: number, label: string): Rng {
  let h = 0x811c9dc5
  const s = seed >>> 0
  for (let k = 0; k < 32; k += 8) h = Math.imul(h ^ ((s >>> k) & 0xff), 0x01000193)
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193)
  return mulberry32(h)
}

/** An integer in [lo, hi], both inclusive. */
export function randInt(rng: Rng, lo: number, hi: number): number {
  return lo + Math.floor(rng() * (hi - lo + 1))
}

/** One element, uniformly. */
export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[randInt(rng, 0, items.length - 1)]
}

/** A shuffled copy (Fisher–Yates). */
export function shuffle<T>(rng: Rng, items: readonly T[]): T[] {
  const out = items.slice()
  for (let i = out.length - 1; i > 0; i--) {
    const j = randInt(rng, 0, i)
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

/** `count` distinct elements in random order. */
export function sample<T>(rng: Rng, items: readonly T[], count: number): T[] {
  return shuffle(rng, items).slice(0, count)
}
