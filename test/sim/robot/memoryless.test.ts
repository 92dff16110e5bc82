/**
 * Memoryless agents — functions of what is visible now (given exact positions of everything on
 * screen, more than pixels would tell them) — must fail most memory-task episodes, while the
 * expert, which remembers, succeeds on all. A side-guessing agent shows the 50 % floor of a
 * two-spot task.
 */
import { describe, expect, it } from 'vitest'
import { RobotEnv, mulberry32, seek, streamSeed, type Vec2 } from '../../../sim/robot/index.ts'
import { SPOT_OFFSET_M } from '../../../sim/robot/tasks/moved-occluded.ts'
import { runEpisode, visibleThings, type Policy } from './helpers.ts'

const EPISODES = 200
const MEMORY_TASKS = ['hidden-target', 'moved-occluded']

const goTo =
  (target: Vec2): Policy =>
  (env) =>
    seek(env.world.gripper, target, 1, 0)

const AGENTS: Record<string, (seed: number) => Policy> = {
  centre: () => goTo({ x: 0.5, y: 0.5 }),
  'nearest visible thing': () => (env, obs) => {
    const g = env.world.gripper
    const things = visibleThings(env.world)
    const dist = (p: Vec2) => Math.hypot(p.x - g.x, p.y - g.y)
    const nearest = things.reduce<Vec2 | null>((a, b) => (a && dist(a) <= dist(b) ? a : b), null)
    return goTo(nearest ?? g)(env, obs)
  },
  'random visible thing': (seed) => {
    const pick = streamSeed(seed, 'agent')
    return (env, obs) => {
      const things = visibleThings(env.world)
      return goTo(things.length ? things[pick % things.length] : env.world.gripper)(env, obs)
    }
  },
}

function successRate(task: string, agent: (seed: number) => Policy): number {
  const env = new RobotEnv()
  let wins = 0
  for (let seed = 0; seed < EPISODES; seed++)
    if (runEpisode(env, task, seed, agent(seed)).last.success) wins++
  return wins / EPISODES
}

describe('memoryless agents fail memory tasks', () => {
  for (const task of MEMORY_TASKS)
    it.each(Object.keys(AGENTS))(`${task}: '%s' succeeds on ≤ 10 % of 200 episodes`, (name) => {
      expect(successRate(task, AGENTS[name])).toBeLessThanOrEqual(0.1)
    })

  it('moved-occluded: guessing a side (knowing both spots) succeeds about half the time', () => {
    const guess = (seed: number): Policy => {
      const side = mulberry32(seed).next() < 0.5 ? -1 : 1
      return (env, obs) => {
        const c = env.world.occluders[0]
        const spot = { x: (c.x0 + c.x1) / 2 + side * SPOT_OFFSET_M, y: (c.y0 + c.y1) / 2 }
        return env.world.tick < env.episode.hiddenFromTick!
          ? seek(env.world.gripper, env.world.gripper, 0, 0)
          : goTo(spot)(env, obs)
      }
    }
    const rate = successRate('moved-occluded', guess)
    expect(rate).toBeGreaterThan(0.35)
    expect(rate).toBeLessThan(0.65)
  })
})
