/**
 * @module Reach red (memoryless). A red disc or square and two distractors lie on the table, a
 * grey cover elsewhere; the gripper must get within 6 cm of the red object's centre and be there in
 * the last 2 of 12 ticks. The red object is 0.2–0.8 m from the start: at most 8 ticks at full
 * speed.
 */
import type { Episode, Task } from '../episode.ts'
import { seek } from '../expert.ts'
import { COLORS, distractorColors } from '../palette.ts'
import { distractors, OBJECT_SIZE_M, placeClear, randomOccluder } from '../place.ts'
import { stream } from '../rng.ts'
import { distance, type World, type WorldObject } from '../world.ts'

/** Within this distance of the red object's centre counts as touching it (m). */
export const REACH_RADIUS_M = 0.06
const RED = 0

export const reachRed: Task = {
  name: 'reach-red',
  instruction: 'Move the gripper onto the red object and stay there.',
  memory: false,
  gapTicks: 0,
  create(seed): Episode {
    const rng = stream(seed, 'layout')
    const occluder = randomOccluder(rng)
    const start = placeClear(rng, 0.15, 0.85, 0, { gapM: 0 })
    const at = placeClear(rng, 0.1, 0.9, OBJECT_SIZE_M, { rects: [occluder] }, (p) => {
      const d = distance(p, start)
      return d >= 0.2 && d <= 0.8
    })
    const red: WorldObject = {
      name: 'red',
      shape: rng.pick(['disc', 'square'] as const),
      color: COLORS.red,
      ...at,
      sizeM: OBJECT_SIZE_M,
      graspable: true,
    }
    const others = distractors(rng, 2, distractorColors(COLORS.red), {
      discs: [
        { ...start, r: 0.05 },
        { ...at, r: OBJECT_SIZE_M },
      ],
      rects: [occluder],
    })
    const world: World = {
      tick: 0,
      gripper: { ...start, vx: 0, vy: 0, grip: 0, held: -1 },
      objects: [red, ...others],
      markers: [],
      occluders: [occluder],
    }
    return {
      task: 'reach-red',
      world,
      maxTicks: 12,
      dwellTicks: 2,
      hiddenFromTick: null,
      holdUntilTick: 0,
      script: () => {},
      satisfied: (w) => distance(w.gripper, w.objects[RED]) <= REACH_RADIUS_M,
      memoryDependent: () => false,
      expert: (w) => seek(w.gripper, w.objects[RED], 0, 0),
    }
  },
}
