/**
 * @module Shared drivers for the robot-sim tests: run an episode under a policy, the expert policy,
 * a seeded random-walk action sequence and the "what is visible now" oracle of memoryless agents.
 */
import {
  RobotEnv,
  expertChunk,
  markerVisible,
  mulberry32,
  objectVisible,
  type Action,
  type ActionChunk,
  type Observation,
  type StepResult,
  type Vec2,
  type World,
} from '../../../sim/robot/index.ts'

/** A policy sees the env (tests may read privileged state) and answers an action or a chunk. */
export type Policy = (env: RobotEnv, obs: Observation) => Action | ActionChunk

/** Every observation of one episode (reset first), the first action of each reply, the result. */
export interface Run {
  observations: Observation[]
  actions: Action[]
  last: StepResult
}

export function runEpisode(
  env: RobotEnv,
  task: string,
  seed: number,
  policy: Policy,
  hiddenSeed?: number,
): Run {
  let obs: Observation = env.reset(task, seed, { hiddenSeed })
  const observations = [obs]
  const actions: Action[] = []
  for (;;) {
    const reply = policy(env, obs)
    const first = Array.isArray(reply) ? (reply as ActionChunk)[0] : (reply as Action)
    actions.push(first)
    const result = env.step(first)
    observations.push(result)
    if (result.done) return { observations, actions, last: result }
    obs = result
  }
}

export const expertPolicy: Policy = (env) => expertChunk(env.episode, env.world)

/** A policy replaying fixed actions (idle once they run out). */
export function replay(actions: readonly Action[]): Policy {
  return (env) => actions[env.world.tick] ?? { dx: 0, dy: 0, grip: 0 }
}

/** `count` random-walk actions from a seed: smooth headings, full speed, gripper open. */
export function randomWalk(seed: number, count = 24): Action[] {
  const rng = mulberry32(seed)
  let heading = rng.range(0, 2 * Math.PI)
  return Array.from({ length: count }, () => {
    heading += rng.range(-1, 1)
    return { dx: Math.cos(heading), dy: Math.sin(heading), grip: 0 }
  })
}

/** Centres of everything a camera shows right now: visible objects and visible markers (m). */
export function visibleThings(world: World): Vec2[] {
  const objects = world.objects.filter(
    (_, i) => objectVisible(world, i) && world.gripper.held !== i,
  )
  const markers = world.markers.filter((m) => markerVisible(world, m))
  return [...objects, ...markers].map(({ x, y }) => ({ x, y }))
}

/** Frames and proprio as one comparable string per observation. */
export function fingerprint(obs: Observation): string {
  const frames = obs.frames.map((f) => `${f.width}x${f.height}:${Array.from(f.data).join(',')}`)
  return `${frames.join('|')}#${Array.from(obs.proprio).join(',')}`
}

/** Where a memory task's hidden answer lies once hidden: hidden-target's marker spot, or the spot
 * moved-occluded's disc slid to (both stay in the world, invisible). */
export function hiddenAnswer(task: string, world: World): Vec2 {
  return task === 'hidden-target' ? world.markers[0] : world.objects[0]
}
