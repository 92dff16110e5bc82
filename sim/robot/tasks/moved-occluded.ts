/**
 * @module Moved while occluded (memory). A blue disc starts just outside a grey cover, slides
 * sideways for 1–3 ticks in plain view (left or right: the hidden bit), then slides under the
 * cover to the hidden spot on that side. Slide speed gives away when it will vanish, never where.
 * The gripper must close on it there (it cannot be caught while sliding). The gripper starts within
 * 6 cm of the cover's centre line and is held by its brake until `DELAY_TICKS` = 3 ticks after the
 * disc vanished (the delay period), so neither its position nor its velocity can carry the side:
 * the 4 frames from the hidden tick through the go tick are the same for both sides. The episode ends 8 ticks after the disc
 * vanishes: a gap of 8 frames. The cover sits near the top (disc below it) or the bottom.
 */
import type { Episode, Task } from '../episode.ts'
import { seek } from '../expert.ts'
import { COLORS, distractorColors } from '../palette.ts'
import { distractors, OBJECT_SIZE_M, placeClear } from '../place.ts'
import { stream } from '../rng.ts'
import type { Rect, Vec2, World, WorldObject } from '../world.ts'

const GAP_TICKS = 8
/** Ticks the brake holds after the disc vanishes (the delay period). */
export const DELAY_TICKS = 3
/** Cover size (m) and the spots' offset from its centre (m). */
const COVER_HALF_W_M = 0.25
const COVER_HALF_H_M = 0.12
export const SPOT_OFFSET_M = 0.15
/** How far below (or above) the cover centre the disc starts (m): just outside the cover. */
const START_OFFSET_M = COVER_HALF_H_M + OBJECT_SIZE_M + 0.04
const SLIDER = 0

export const movedOccluded: Task = {
  name: 'moved-occluded',
  instruction: 'Pick up the blue disc that slid under the grey cover.',
  memory: true,
  gapTicks: GAP_TICKS,
  create(seed, hiddenSeed): Episode {
    const rng = stream(seed, 'layout')
    const toward = rng.pick([1, -1]) // +1: cover near the top, disc starts below it
    const cx = rng.range(0.35, 0.65)
    const cy = toward === 1 ? rng.range(0.2, 0.3) : rng.range(0.7, 0.8)
    const cover: Rect = {
      x0: cx - COVER_HALF_W_M,
      x1: cx + COVER_HALF_W_M,
      y0: cy - COVER_HALF_H_M,
      y1: cy + COVER_HALF_H_M,
    }
    const slideTicks = rng.int(1, 3)
    const hideTick = slideTicks + 1
    const startY = cy + toward * START_OFFSET_M
    // Near the centre line, beyond the disc's start: ≤ 0.39 m from either spot, 4 ticks' travel.
    const gripperStart: Vec2 = {
      x: cx + rng.range(-0.06, 0.06),
      y: cy + toward * rng.range(0.27, 0.32),
    }
    const lane = {
      x0: cover.x0,
      x1: cover.x1,
      y0: Math.min(cy, cy + toward * 0.38),
      y1: Math.max(cy, cy + toward * 0.38),
    }
    const others = distractors(rng, 2, distractorColors(COLORS.blue), {
      discs: [{ ...gripperStart, r: 0.05 }],
      rects: [cover, lane],
    })
    const side = stream(hiddenSeed, 'hidden').pick([-1, 1])
    const spot: Vec2 = { x: cx + side * SPOT_OFFSET_M, y: cy }
    const slider: WorldObject = {
      name: 'slider',
      shape: 'disc',
      color: COLORS.blue,
      x: cx,
      y: startY,
      sizeM: OBJECT_SIZE_M,
      graspable: false,
    }
    const world: World = {
      tick: 0,
      gripper: { ...gripperStart, vx: 0, vy: 0, grip: 0, held: -1 },
      objects: [slider, ...others],
      markers: [],
      occluders: [cover],
    }
    const script = (w: World) => {
      const t = w.tick
      if (t > hideTick) return
      const o = w.objects[SLIDER]
      if (t === hideTick) Object.assign(o, spot, { graspable: true })
      else Object.assign(o, { x: cx + (side * SPOT_OFFSET_M * t) / slideTicks, y: startY })
    }
    return {
      task: 'moved-occluded',
      world,
      maxTicks: hideTick + GAP_TICKS,
      dwellTicks: 1,
      hiddenFromTick: hideTick,
      holdUntilTick: hideTick + DELAY_TICKS,
      script,
      satisfied: (w) => w.gripper.held === SLIDER,
      memoryDependent: (w) => w.tick >= hideTick && w.gripper.held !== SLIDER,
      expert: (w, knownTick) => {
        const g = w.gripper
        if (g.held === SLIDER) return seek(g, g, 1, 1)
        // The side shows from tick 1; the brake voids the commands until the go tick.
        if (knownTick < 1) return seek(g, g, 0, 0)
        return seek(g, spot, 1, 0)
      },
    }
  },
}
