/**
 * @module Seeded randomness for the robot simulator: mulberry32 plus labelled streams. No
 * Math.random anywhere; an episode is a pure function of (task, seed, hiddenSeed).
 */

/** A seeded generator with the few draws the tasks need. */
export interface Rng {
  /** A float in [0, 1). */
  next(): number
  /** A float in [lo, hi). */
  range(lo: number, hi: number): number
  /** An integer in [lo, hi], both inclusive. */
  int(lo: number, hi: number): number
  /** One element, uniformly; the list must not be empty. */
  pick<T>(items: readonly T[]): T
}

/**
 * mulberry32 (Tommy Ettinger): a 32-bit state PRNG, fast and good enough for layouts.
 * @param seed any integer; only its low 32 bits matter
 */
export function mulberry32(seed: number): Rng {
  let state = seed >>> 0
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1))
  return {
    next,
    range: (lo, hi) => lo + (hi - lo) * next(),
    int,
    pick: (items) => items[int(0, items.length - 1)],
  }
}

/**
 * A 32-bit seed for one purpose of one seed: FNV-1a over the seed's 4 bytes and the label.
 * Streams with different labels ('layout', 'hidden') never affect each other.
 */
export function streamSeed(seed: number, label: string): number {
  let h = 0x811c9dc5
  const s = seed >>> 0
  for (let k = 0; k < 32; k += 8) h = Math.imul(h ^ ((s >>> k) & 0xff), 0x01000193)
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** `mulberry32(streamSeed(seed, label))`: an independent generator for one purpose. */
export function stream(seed: number, label: string): Rng {
  return mulberry32(streamSeed(seed, label))
}
