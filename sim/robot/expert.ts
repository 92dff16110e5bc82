/**
 * @module The scripted expert: a saturated proportional controller toward the target it
 * remembers (with velocity control the D term is not needed), grasping and releasing on arrival.
 * It outputs a K-step chunk by rolling a copy of the world forward with what it knew at the chunk's
 * first tick.
 */
import { CHUNK_TICKS, type Action } from './action.ts'
import { advance, type Episode } from './episode.ts'
import { MAX_STEP_M, cloneWorld, type Vec2, type World } from './world.ts'

/**
 * Head for `target` at full speed; if it is within one tick's reach, land exactly on it.
 * @param gripOnArrival grip bit for the tick that lands on the target
 * @param gripEnRoute grip bit while still travelling
 */
export function seek(from: Vec2, target: Vec2, gripOnArrival: 0 | 1, gripEnRoute: 0 | 1): Action {
  const dx = target.x - from.x
  const dy = target.y - from.y
  const dist = Math.hypot(dx, dy)
  if (dist <= MAX_STEP_M) return { dx: dx / MAX_STEP_M, dy: dy / MAX_STEP_M, grip: gripOnArrival }
  return { dx: dx / dist, dy: dy / dist, grip: gripEnRoute }
}

/**
 * The expert's chunk for the current tick: `ticks` actions, the first for `world.tick`.
 * Later actions come from a look-ahead on a copy of the world that uses only what was visible up to
 * `world.tick` (the task's script still runs, e.g. a sliding object keeps sliding).
 */
export function expertChunk(episode: Episode, world: World, ticks = CHUNK_TICKS): Action[] {
  const sim = cloneWorld(world)
  const knownTick = world.tick
  const chunk: Action[] = []
  for (let k = 0; k < ticks; k++) {
    const action = episode.expert(sim, knownTick)
    chunk.push(action)
    advance(episode, sim, action)
  }
  return chunk
}
