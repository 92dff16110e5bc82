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

  it('moved-occluded: the expert acts the same for both sides until the disc is hidden', () => {
    const env = new RobotEnv()
    for (let seed = 0; seed < 50; seed++) {
      const [left, right] = [0, 1].map((side) => {
        for (let hiddenSeed = 0; ; hiddenSeed++) {
          const run = runEpisode(env, 'moved-occluded', seed, expertPolicy, hiddenSeed)
          const cover = env.world.occluders[0]
          const slid = env.world.objects[0].x > (cover.x0 + cover.x1) / 2 ? 1 : 0
          if (slid === side) return { run, hideTick: env.episode.hiddenFromTick! }
        }
      })
      const hideTick = left.hideTick
      expect(right.hideTick).toBe(hideTick)
      expect(left.run.actions.slice(0, hideTick)).toEqual(right.run.actions.slice(0, hideTick))
      expect(left.run.actions[hideTick].dx).toBeLessThan(right.run.actions[hideTick].dx)
    }
  })
})
