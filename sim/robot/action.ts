/**
 * @module Actions and action chunks. A policy answers each control tick with a chunk of
 * `CHUNK_TICKS` = 4 future actions; the env executes the first (see `executeChunk` for more).
 */

/** Actions per chunk (K): the policy predicts this many future ticks at once. */
export const CHUNK_TICKS = 4

/** Numbers per action in the flat layout: dx, dy, grip. */
export const ACTION_SIZE = 3

/**
 * One tick's command.
 * - `dx`, `dy`: gripper velocity in units of the max speed (1 = `MAX_SPEED_MPS`; x right, y down).
 *   Each is clamped to [−1, 1], then the vector is scaled down to norm ≤ 1, so no direction is
 *   faster than the max speed. Non-finite values count as 0.
 * - `grip`: ≥ 0.5 closes the gripper, below opens it (floats, so a model's output can be fed
 *   directly). Closing over a graspable object grasps it; opening releases.
 */
export interface Action {
  readonly dx: number
  readonly dy: number
  readonly grip: number
}

/** `CHUNK_TICKS` actions, the first for the current tick. */
export type ActionChunk = readonly Action[]

/** An action after clamping: the velocity has norm ≤ 1 and grip is a bit. */
export interface ClampedAction {
  readonly dx: number
  readonly dy: number
  readonly grip: 0 | 1
}

/** Stay put with the gripper open. */
export const IDLE: Action = { dx: 0, dy: 0, grip: 0 }

const finite = (v: number) => (Number.isFinite(v) ? v : 0)
const clamp1 = (v: number) => Math.min(1, Math.max(-1, finite(v)))

/** Clamp per axis to [−1, 1], then the norm to ≤ 1; threshold grip at 0.5. */
export function clampAction(action: Action): ClampedAction {
  let dx = clamp1(action.dx)
  let dy = clamp1(action.dy)
  const norm = Math.hypot(dx, dy)
  if (norm > 1) {
    dx /= norm
    dy /= norm
  }
  return { dx, dy, grip: finite(action.grip) >= 0.5 ? 1 : 0 }
}

/**
 * Flat layout of a chunk for models: Float32Array [ticks, 3] with rows (dx, dy, grip).
 * @param chunk any number of actions (normally `CHUNK_TICKS`)
 */
export function chunkToArray(chunk: ActionChunk): Float32Array {
  const out = new Float32Array(chunk.length * ACTION_SIZE)
  chunk.forEach((a, i) => out.set([a.dx, a.dy, a.grip], i * ACTION_SIZE))
  return out
}

/**
 * The inverse of `chunkToArray`.
 * @param data Float32Array [ticks, 3]
 * @throws RangeError if the length is not a multiple of 3
 */
export function chunkFromArray(data: ArrayLike<number>): Action[] {
  if (data.length % ACTION_SIZE !== 0)
    throw new RangeError(`chunk length must be a multiple of ${ACTION_SIZE}, got ${data.length}`)
  const out: Action[] = []
  for (let i = 0; i < data.length; i += ACTION_SIZE)
    out.push({ dx: data[i], dy: data[i + 1], grip: data[i + 2] })
  return out
}
