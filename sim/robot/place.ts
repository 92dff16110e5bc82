/**
 * @module Seeded scene layout shared by the tasks: rejection sampling of clear spots, distractor
 * objects and a random occluder. All distances in m; every draw comes from the given Rng, so a
 * layout is a pure function of its seed.
 */
import type { Rng } from './rng.ts'
import { distance, type Rect, type Rgb, type Vec2, type WorldObject } from './world.ts'

/** Half side of distractor squares and radius of distractor discs (m). */
export const OBJECT_SIZE_M = 0.06

/** A round keep-out zone (m). */
export interface Disc extends Vec2 {
  r: number
}

/** What a new thing must keep clear of: discs and rectangles, with `gapM` between edges. */
export interface KeepOut {
  discs?: readonly Disc[]
  rects?: readonly Rect[]
  gapM?: number
}

const MAX_TRIES = 10_000

function rectGap(p: Vec2, r: Rect): number {
  const dx = Math.max(r.x0 - p.x, 0, p.x - r.x1)
  const dy = Math.max(r.y0 - p.y, 0, p.y - r.y1)
  return Math.hypot(dx, dy)
}

/**
 * A point in [lo, hi]² whose disc of radius `r` keeps clear of `keepOut` and passes `accept`.
 * @throws Error after 10 000 rejected draws (a layout bug, never a bad seed in practice)
 */
export function placeClear(
  rng: Rng,
  lo: number,
  hi: number,
  r: number,
  { discs = [], rects = [], gapM = 0.02 }: KeepOut = {},
  accept: (p: Vec2) => boolean = () => true,
): Vec2 {
  for (let i = 0; i < MAX_TRIES; i++) {
    const p = { x: rng.range(lo, hi), y: rng.range(lo, hi) }
    const clearDiscs = discs.every((d) => distance(p, d) >= d.r + r + gapM)
    const clearRects = rects.every((q) => rectGap(p, q) >= r * Math.SQRT2 + gapM)
    if (clearDiscs && clearRects && accept(p)) return p
  }
  throw new Error(`placeClear: no spot after ${MAX_TRIES} draws`)
}

/**
 * `count` distractor objects (random shape and distinct colours) in [0.1, 0.9]², clear of `keepOut`
 * and of each other.
 */
export function distractors(
  rng: Rng,
  count: number,
  colors: readonly Rgb[],
  keepOut: KeepOut,
): WorldObject[] {
  const out: WorldObject[] = []
  const pool = colors.slice()
  for (let i = 0; i < count; i++) {
    const color = pool.splice(rng.int(0, pool.length - 1), 1)[0]
    const shape = rng.pick(['disc', 'square'] as const)
    const discs = [
      ...(keepOut.discs ?? []),
      ...out.map((o) => ({ x: o.x, y: o.y, r: OBJECT_SIZE_M })),
    ]
    const p = placeClear(rng, 0.1, 0.9, OBJECT_SIZE_M, { ...keepOut, discs })
    out.push({ name: `distractor${i}`, shape, color, ...p, sizeM: OBJECT_SIZE_M, graspable: true })
  }
  return out
}

/** A grey cover 0.2–0.35 m wide and 0.15–0.3 m tall, anywhere inside [0.05, 0.95]². */
export function randomOccluder(rng: Rng): Rect {
  const w = rng.range(0.2, 0.35)
  const h = rng.range(0.15, 0.3)
  const x0 = rng.range(0.05, 0.95 - w)
  const y0 = rng.range(0.05, 0.95 - h)
  return { x0, y0, x1: x0 + w, y1: y0 + h }
}
