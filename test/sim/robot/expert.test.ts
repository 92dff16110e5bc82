import { describe, expect, it } from 'vitest'
import {
  CHUNK_TICKS,
  MAX_EPISODE_TICKS,
  RobotEnv,
  TASKS,
  expertChunk,
  taskByName,
} from '../../../sim/robot/index.ts'
import { expertPolicy, runEpisode } from './helpers.ts'

const EPISODES = 200
const MEMORY_TASKS = TASKS.filter((t) => t.memory).map((t) => t.name)

describe('scripted expert', () => {
  it.each(TASKS.map((t) => t.name))('%s: succeeds on 200/200 seeded episodes', (task) => {
    const env = new RobotEnv()
    const failures = Array.from({ length: EPISODES }, (_, seed) => seed).filter(
      (seed) => !runEpisode(env, task, seed, expertPolicy).last.success,
    )
    expect(failures).toEqual([])
  })

  it.each(TASKS.map((t) => t.name))(
    '%s: episodes ≤ 24 ticks; memory flags start when hidden, gap ≤ 8',
    (task) => {
      const { memory, gapTicks } = taskByName(task)
      const env = new RobotEnv()
      for (let seed = 0; seed < EPISODES; seed++) {
        const run = runEpisode(env, task, seed, expertPolicy)
        const { maxTicks, hiddenFromTick } = env.episode
        expect(run.actions.length).toBe(maxTicks)
        expect(maxTicks).toBeLessThanOrEqual(MAX_EPISODE_TICKS)
        // Observations the policy acts on: ticks 0 … maxTicks − 1.
        const flags = run.observations.slice(0, maxTicks).map((o) => o.memoryDependent)
        if (!memory) {
          expect(hiddenFromTick).toBeNull()
          expect(flags.every((f) => !f)).toBe(true)
          continue
        }
        expect(flags.indexOf(true)).toBe(hiddenFromTick)
        expect(maxTicks - hiddenFromTick!).toBe(gapTicks)
        expect(gapTicks).toBeLessThanOrEqual(8)
      }
    },
  )

  it.each(TASKS.map((t) => t.name))('%s: chunks hold K = 4 actions with |dx|, |dy| ≤ 1', (task) => {
    const env = new RobotEnv()
    env.reset(task, 11)
    while (!env.done) {
      const chunk = expertChunk(env.episode, env.world)
      expect(chunk).toHaveLength(CHUNK_TICKS)
      for (const a of chunk) expect(Math.hypot(a.dx, a.dy)).toBeLessThanOrEqual(1 + 1e-12)
      env.step(chunk)
    }
  })

  it.each(MEMORY_TASKS)(
    '%s: the brake holds the gripper until 3 ticks after the information is hidden',
    (task) => {
      const env = new RobotEnv()
      for (let seed = 0; seed < 50; seed++) {
        const run = runEpisode(env, task, seed, expertPolicy)
        const { hiddenFromTick, holdUntilTick } = env.episode
        expect(holdUntilTick).toBe(hiddenFromTick! + 3)
        // the expert commands motion during the delay, and nothing moves
        expect(run.actions.slice(1, holdUntilTick).some((a) => a.dx !== 0 || a.dy !== 0)).toBe(true)
        const start = run.observations[0].proprio
        for (let t = 0; t <= holdUntilTick; t++)
          expect(Array.from(run.observations[t].proprio), `tick ${t}`).toEqual(Array.from(start))
        expect(run.observations[holdUntilTick + 1].proprio[2] ** 2 + run.observations[holdUntilTick + 1].proprio[3] ** 2).toBeGreaterThan(0)
      }
    },
  )
})
