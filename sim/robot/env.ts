/**
 * @module `RobotEnv`: the gym-style loop over one episode at a time. Each tick a policy gets an
 * `Observation` (one RGB8 frame per camera, proprioception, the instruction, the tick and whether
 * the right action depends on something no longer visible) and answers with an action chunk; the
 * env executes the chunk's first action (`executeChunk` runs more, open-loop).
 */
import type { Action, ActionChunk } from './action.ts'
import { advance, type Episode } from './episode.ts'
import { DEFAULT_CAMERAS, renderAll, type Camera, type RGB8 } from './render.ts'
import { streamSeed } from './rng.ts'
import { taskByName } from './tasks.ts'
import { cloneWorld, type World } from './world.ts'

/** Numbers in `proprio`: gx, gy (m), vx, vy (m/s over the last tick), grip (0 open, 1 closed). */
export const PROPRIO_SIZE = 5

/** What the policy sees at one tick. */
export interface Observation {
  /** One frame per camera, in the env's camera order (default: top 32×32, wrist 16×16). */
  readonly frames: RGB8[]
  /** Float32Array [5]: gx, gy (m, 0–1), vx, vy (m/s, |v| ≤ 1), grip bit. */
  readonly proprio: Float32Array
  /** The task's instruction; constant over the episode and over seeds. */
  readonly instruction: string
  /** Ticks since reset (0.1 s each). */
  readonly tick: number
  /**
   * True when the correct action depends on information no longer visible. A label for evaluation
   * and loss weighting, not a policy input.
   */
  readonly memoryDependent: boolean
}

/** An observation plus the episode's status after a step. */
export interface StepResult extends Observation {
  /** True once `maxTicks` actions have run; `step` then throws until `reset`. */
  readonly done: boolean
  /** The goal held in each of the last `dwellTicks` states; the episode's result once `done`. */
  readonly success: boolean
}

export interface RobotEnvOptions {
  cameras?: readonly Camera[]
}

export interface ResetOptions {
  /** Seed of the hidden information only (default: derived from `seed`). */
  hiddenSeed?: number
}

/** Proprioception of a world: Float32Array [gx, gy, vx, vy, grip]. */
export function proprio(world: World): Float32Array {
  const g = world.gripper
  return Float32Array.of(g.x, g.y, g.vx, g.vy, g.grip)
}

/** One episode at a time: `reset`, then `step` until `done`. Deterministic given (task, seed). */
export class RobotEnv {
  readonly cameras: readonly Camera[]
  #episode: Episode | null = null
  #world: World | null = null
  #metTicks = 0

  constructor({ cameras = DEFAULT_CAMERAS }: RobotEnvOptions = {}) {
    this.cameras = cameras
  }

  /**
   * Start an episode.
   * @param seed integer; only its low 32 bits matter
   * @throws RangeError for an unknown task
   */
  reset(taskName: string, seed: number, { hiddenSeed }: ResetOptions = {}): Observation {
    const episode = taskByName(taskName).create(seed, hiddenSeed ?? streamSeed(seed, 'hidden-seed'))
    this.#episode = episode
    this.#world = cloneWorld(episode.world)
    this.#metTicks = episode.satisfied(this.#world) ? 1 : 0
    return this.#observe()
  }

  /**
   * Execute one action, or the first action of a chunk.
   * @throws Error before `reset`, after `done`, or on an empty chunk
   */
  step(action: Action | ActionChunk): StepResult {
    const { episode, world } = this
    if (this.done) throw new Error('episode is done; call reset()')
    const first = Array.isArray(action) ? (action as ActionChunk)[0] : (action as Action)
    if (!first) throw new Error('empty action chunk')
    advance(episode, world, first)
    this.#metTicks = episode.satisfied(world) ? this.#metTicks + 1 : 0
    return { ...this.#observe(), done: this.done, success: this.success }
  }

  /** The current episode (privileged: for experts and tests). @throws Error before `reset` */
  get episode(): Episode {
    if (!this.#episode) throw new Error('call reset() first')
    return this.#episode
  }

  /**
   * The live world (privileged: for experts and tests; do not mutate).
   * @throws Error before `reset`
   */
  get world(): World {
    if (!this.#world) throw new Error('call reset() first')
    return this.#world
  }

  get done(): boolean {
    return this.world.tick >= this.episode.maxTicks
  }

  get success(): boolean {
    return this.#metTicks >= this.episode.dwellTicks
  }

  #observe(): Observation {
    const { episode, world } = this
    return {
      frames: renderAll(world, this.cameras),
      proprio: proprio(world),
      instruction: taskByName(episode.task).instruction,
      tick: world.tick,
      memoryDependent: episode.memoryDependent(world),
    }
  }
}

/**
 * Execute the first `count` actions of a chunk in order, open-loop, stopping early when the episode
 * ends. A client that misses its next reply's deadline keeps running the previous chunk this way.
 * @param count 1 ≤ count ≤ chunk.length (default: all)
 * @returns one result per executed action
 * @throws RangeError on a bad count
 */
export function executeChunk(
  env: RobotEnv,
  chunk: ActionChunk,
  count = chunk.length,
): StepResult[] {
  if (!Number.isInteger(count) || count < 1 || count > chunk.length)
    throw new RangeError(`count must be an integer in [1, ${chunk.length}], got ${count}`)
  const out: StepResult[] = []
  for (let i = 0; i < count && !env.done; i++) out.push(env.step(chunk[i]))
  return out
}
