/**
 * @module Pick and place (memoryless). Put the blue square on the green pad: close the gripper
 * on the square, carry it, open over the pad. Success: the square rests (not held) with its centre
 * inside the pad in the final state, after 24 ticks. Start→square ≤ 0.75 m and square→pad
 * 0.25–0.75 m, so the expert needs at most 16 ticks.
 */
import type { Episode, Task } from '../episode.ts'
import { seek } from '../expert.ts'
import { COLORS, distractorColors } from '../palette.ts'
import { distractors, OBJECT_SIZE_M, placeClear, randomOccluder } from '../place.ts'
import { stream } from '../rng.ts'
import { distance, type Marker, type Vec2, type World, type WorldObject } from '../world.ts'

/** Half side of the goal pad (m): the square's centre must lie within it. */
export const PAD_HALF_M = 0.08
const BOX = 0

const onPad = (p: Vec2, pad: Vec2) =>
  Math.abs(p.x - pad.x) <= PAD_HALF_M && Math.abs(p.y - pad.y) <= PAD_HALF_M

export const pickPlace: Task = {
  name: 'pick-place',
  instruction: 'Put the blue square on the green pad.',
  memory: false,
  gapTicks: 0,
  create(seed): Episode {
    const rng = stream(seed, 'layout')
    const occluder = randomOccluder(rng)
    const start = placeClear(rng, 0.15, 0.85, 0, { gapM: 0 })
    const boxAt = placeClear(rng, 0.1, 0.9, OBJECT_SIZE_M, { rects: [occluder] }, (p) => {
      const d = distance(p, start)
      return d >= 0.15 && d <= 0.75
    })
    const pad = placeClear(
      rng,
      0.1,
      0.9,
      PAD_HALF_M,
      { rects: [occluder], discs: [{ ...boxAt, r: OBJECT_SIZE_M }] },
      (p) => distance(p, boxAt) >= 0.25 && distance(p, boxAt) <= 0.75,
    )
    const box: WorldObject = {
      name: 'box',
      shape: 'square',
      color: COLORS.blue,
      ...boxAt,
      sizeM: OBJECT_SIZE_M,
      graspable: true,
    }
    const padMarker: Marker = {
      name: 'pad',
      shape: 'square',
      color: COLORS.pad,
      ...pad,
      sizeM: PAD_HALF_M,
      visible: true,
    }
    const others = distractors(rng, 2, distractorColors(COLORS.blue, COLORS.green), {
      discs: [
        { ...start, r: 0.05 },
        { ...boxAt, r: OBJECT_SIZE_M },
        { ...pad, r: PAD_HALF_M * Math.SQRT2 },
      ],
      rects: [occluder],
    })
    const world: World = {
      tick: 0,
      gripper: { ...start, vx: 0, vy: 0, grip: 0, held: -1 },
      objects: [box, ...others],
      markers: [padMarker],
      occluders: [occluder],
    }
    return {
      task: 'pick-place',
      world,
      maxTicks: 24,
      dwellTicks: 1,
      hiddenFromTick: null,
      holdUntilTick: 0,
      script: () => {},
      satisfied: (w) => w.gripper.held !== BOX && onPad(w.objects[BOX], pad),
      memoryDependent: () => false,
      expert: (w) => {
        const g = w.gripper
        if (g.held === BOX) return seek(g, pad, 0, 1)
        if (onPad(w.objects[BOX], pad)) return seek(g, g, 0, 0)
        return seek(g, w.objects[BOX], 1, 0)
      },
    }
  },
}
