/**
 * @module Hidden target (memory), a delayed-response task: a magenta marker shows a target spot
 * for the first 1 or 2 ticks (the cue), then vanishes; the gripper is held by its brake while the
 * cue shows and for `DELAY_TICKS` = 3 ticks after (the delay period), then must get to the spot
 * and stay within 6 cm. Nothing that moves can carry the target through the delay, so the policy
 * has to remember the cue: the 4 frames from the hidden tick through the go tick are the same
 * whatever the target. The episode ends 8 ticks after the marker vanishes, and success needs the gripper on
 * target in the last 2 states, so the memory gap is 8 frames. The target is 0.2–0.38 m from the
 * start: at most 4 ticks at full speed after the go tick.
 */
import type { Episode, Task } from '../episode.ts'
import { seek } from '../expert.ts'
import { COLORS, distractorColors } from '../palette.ts'
import { distractors, OBJECT_SIZE_M, placeClear, randomOccluder } from '../place.ts'
import { stream } from '../rng.ts'
import { distance, type Marker, type World } from '../world.ts'

/** Within this distance of the target counts as there (m). */
export const TARGET_RADIUS_M = 0.06
const MARKER_SIZE_M = 0.05
const GAP_TICKS = 8
/** Ticks the brake holds after the cue vanishes (the delay period). */
export const DELAY_TICKS = 3

export const hiddenTarget: Task = {
  name: 'hidden-target',
  instruction: 'Go to where the magenta marker was and stay there.',
  memory: true,
  gapTicks: GAP_TICKS,
  create(seed, hiddenSeed): Episode {
    const rng = stream(seed, 'layout')
    const occluder = randomOccluder(rng)
    const start = placeClear(rng, 0.3, 0.7, 0, { gapM: 0 })
    const cueTicks = rng.int(1, 2)
    const objects = distractors(rng, 2, distractorColors(), {
      discs: [{ ...start, r: 0.05 }],
      rects: [occluder],
    })
    const clear = {
      discs: objects.map((o) => ({ x: o.x, y: o.y, r: OBJECT_SIZE_M })),
      rects: [occluder],
    }
    const target = placeClear(stream(hiddenSeed, 'hidden'), 0.1, 0.9, MARKER_SIZE_M, clear, (p) => {
      const d = distance(p, start)
      return d >= 0.2 && d <= 0.38
    })
    const marker: Marker = {
      name: 'target',
      shape: 'disc',
      color: COLORS.magenta,
      ...target,
      sizeM: MARKER_SIZE_M,
      visible: true,
    }
    const world: World = {
      tick: 0,
      gripper: { ...start, vx: 0, vy: 0, grip: 0, held: -1 },
      objects,
      markers: [marker],
      occluders: [occluder],
    }
    return {
      task: 'hidden-target',
      world,
      maxTicks: cueTicks + GAP_TICKS,
      dwellTicks: 2,
      hiddenFromTick: cueTicks,
      holdUntilTick: cueTicks + DELAY_TICKS,
      script: (w) => {
        w.markers[0].visible = w.tick < cueTicks
      },
      satisfied: (w) => distance(w.gripper, target) <= TARGET_RADIUS_M,
      memoryDependent: (w) => w.tick >= cueTicks,
      // The target is on screen at tick 0, so the expert always knows it; it heads there from the
      // start (the brake voids that until the go tick), so its commands never need a clock.
      expert: (w) => seek(w.gripper, target, 0, 0),
    }
  },
}
