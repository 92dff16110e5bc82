/**
 * @module The 2-D workspace and one physics tick. The workspace is the unit square, 1 m × 1 m,
 * x to the right and y downward (like image rows), seen from above. It holds a velocity-controlled
 * point-mass gripper, coloured objects (discs and squares) lying on the table, flat markers
 * painted on the table, and grey occluders: opaque covers above the table and below the gripper,
 * which hide whatever lies fully under them. Pure and deterministic: no clock, no randomness.
 */
import { clampAction, type Action } from './action.ts'

/** Control period: 0.1 s (10 Hz). */
export const TICK_S = 0.1
/** Gripper speed limit: 1 m/s, so at most `MAX_STEP_M` = 0.1 m per tick. */
export const MAX_SPEED_MPS = 1
/** Largest gripper displacement in one tick (m). */
export const MAX_STEP_M = MAX_SPEED_MPS * TICK_S
/** A closing gripper grasps the nearest graspable object whose centre is this close (m). */
export const GRASP_RADIUS_M = 0.06
/** Drawn radius of the gripper (m). */
export const GRIPPER_RADIUS_M = 0.05

/** A point in the workspace (m). */
export interface Vec2 {
  x: number
  y: number
}

/** A colour: red, green, blue in 0–255. */
export type Rgb = readonly [r: number, g: number, b: number]

/** Something drawn: a disc (`sizeM` = radius) or an axis-aligned square (`sizeM` = half side). */
export interface Item extends Vec2 {
  shape: 'disc' | 'square'
  color: Rgb
  /** Radius or half side (m). */
  sizeM: number
}

/** An object on the table. A held object is lifted: drawn above occluders, moved by the gripper. */
export interface WorldObject extends Item {
  name: string
  /** False while a task slides it (it cannot be caught in motion). */
  graspable: boolean
}

/** A flat mark on the table (target marker, goal pad); drawn only while `visible`. */
export interface Marker extends Item {
  name: string
  visible: boolean
}

/** An axis-aligned rectangle (m), x0 < x1, y0 < y1. */
export interface Rect {
  x0: number
  y0: number
  x1: number
  y1: number
}

/** The gripper: position (m), velocity over the last tick (m/s), grip bit, held object or −1. */
export interface Gripper extends Vec2 {
  vx: number
  vy: number
  grip: 0 | 1
  held: number
}

/** The whole privileged state. `tick` counts physics ticks since reset. */
export interface World {
  tick: number
  gripper: Gripper
  objects: WorldObject[]
  markers: Marker[]
  occluders: Rect[]
}

const clamp01 = (v: number) => Math.min(1, Math.max(0, v))

/** Euclidean distance (m). */
export function distance(a: Vec2, b: Vec2): number {
  return Math.hypot(a.x - b.x, a.y - b.y)
}

/** A deep copy (plain data), for look-ahead rollouts. */
export function cloneWorld(world: World): World {
  return {
    tick: world.tick,
    gripper: { ...world.gripper },
    objects: world.objects.map((o) => ({ ...o })),
    markers: world.markers.map((m) => ({ ...m })),
    occluders: world.occluders.map((r) => ({ ...r })),
  }
}

/** Whether the item's bounding square lies inside the rectangle (then every pixel is covered). */
export function coveredBy(item: Item, rect: Rect): boolean {
  const s = item.sizeM
  return (
    item.x - s >= rect.x0 && item.x + s <= rect.x1 && item.y - s >= rect.y0 && item.y + s <= rect.y1
  )
}

/** Whether a camera sees any of this object: held objects always, others unless fully covered. */
export function objectVisible(world: World, index: number): boolean {
  if (world.gripper.held === index) return true
  const o = world.objects[index]
  return !world.occluders.some((r) => coveredBy(o, r))
}

/** Whether a marker is drawn and not fully covered. */
export function markerVisible(world: World, marker: Marker): boolean {
  return marker.visible && !world.occluders.some((r) => coveredBy(marker, r))
}

/** Index of the nearest graspable object within `GRASP_RADIUS_M` of the gripper, or −1. */
function graspCandidate(world: World): number {
  let best = -1
  let bestM = GRASP_RADIUS_M
  world.objects.forEach((o, i) => {
    const d = distance(o, world.gripper)
    if (o.graspable && d <= bestM) [best, bestM] = [i, d]
  })
  return best
}

/**
 * One physics tick (mutates `world`): move the gripper by the clamped velocity × `TICK_S`, stopping
 * at the workspace edge; carry the held object along; then apply the grip bit (opening releases,
 * closing from open grasps the nearest graspable object within reach of the new position).
 * Task scripts (sliding objects, vanishing markers) run after this, in the env.
 */
export function stepWorld(world: World, action: Action): void {
  const a = clampAction(action)
  const g = world.gripper
  const x = clamp01(g.x + a.dx * MAX_STEP_M)
  const y = clamp01(g.y + a.dy * MAX_STEP_M)
  g.vx = (x - g.x) / TICK_S
  g.vy = (y - g.y) / TICK_S
  g.x = x
  g.y = y
  if (g.held >= 0) Object.assign(world.objects[g.held], { x, y })
  if (a.grip === 0) g.held = -1
  else if (g.grip === 0) g.held = graspCandidate(world)
  g.grip = a.grip
  world.tick += 1
}
