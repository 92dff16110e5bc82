/**
 * No-leak: two episodes that differ only in the hidden information (same seed, different hidden
 * seed) must look identical — every camera frame and proprio — from the tick it is hidden on, as
 * long as the same actions are executed. Checked with fixed random walks and with one expert's actions
 * replayed in both episodes (until that expert grasps what it found, which is visible by design).
 */
import { describe, expect, it } from 'vitest'
import { RobotEnv, TASKS, taskByName } from '../../../sim/robot/index.ts'
import { expertPolicy, fingerprint, hiddenAnswer, randomWalk, replay, runEpisode, type Run } from './helpers.ts'

const MEMORY_TASKS = TASKS.filter((t) => t.memory).map((t) => t.name)
const SEEDS = 60

/** Hidden seeds 0, 1, … give different hidden information: a marker spot, a side. */
function hiddenKey(task: string, seed: number, hiddenSeed: number): string {
  const { x, y } = answer(task, seed, hiddenSeed)
  return `${x},${y}`
}

/** Where the hidden answer is: the marker's spot, or the spot the disc slid to. */
function answer(task: string, seed: number, hiddenSeed: number): { x: number; y: number } {
  const env = new RobotEnv()
  runEpisode(env, task, seed, replay([]), hiddenSeed)
  return hiddenAnswer(task, env.world)
}

/** Two hidden seeds with different hidden information for this seed. */
function differingPair(task: string, seed: number): [number, number] {
  const first = hiddenKey(task, seed, 0)
  for (let h = 1; ; h++) if (hiddenKey(task, seed, h) !== first) return [0, h]
}

function compareFromHidden(a: Run, b: Run, hiddenFrom: number, until: number) {
  for (let t = hiddenFrom; t < until; t++) {
    expect(fingerprint(a.observations[t]), `tick ${t}`).toBe(fingerprint(b.observations[t]))
    expect(a.observations[t].memoryDependent).toBe(b.observations[t].memoryDependent)
    expect(a.observations[t].instruction).toBe(b.observations[t].instruction)
  }
  const before = a.observations.slice(0, hiddenFrom).map(fingerprint)
  const beforeB = b.observations.slice(0, hiddenFrom).map(fingerprint)
  expect(before, 'the hidden information was visible before it was hidden').not.toEqual(beforeB)
}

describe('no leak after hiding', () => {
  it.each(MEMORY_TASKS)(
    '%s: same fixed random walk → identical frames and proprio once hidden',
    (task) => {
      for (let seed = 0; seed < SEEDS; seed++) {
        const [ha, hb] = differingPair(task, seed)
        const actions = randomWalk(1000 + seed)
        const envA = new RobotEnv()
        const a = runEpisode(envA, task, seed, replay(actions), ha)
        const b = runEpisode(new RobotEnv(), task, seed, replay(actions), hb)
        expect(a.observations.length).toBe(b.observations.length)
        compareFromHidden(a, b, envA.episode.hiddenFromTick!, a.observations.length)
      }
    },
  )

  it.each(MEMORY_TASKS)(
    '%s: expert A replayed in episode B → identical while A still needs memory',
    (task) => {
      for (let seed = 0; seed < SEEDS; seed++) {
        const [ha, hb] = differingPair(task, seed)
        const envA = new RobotEnv()
        const a = runEpisode(envA, task, seed, expertPolicy, ha)
        const b = runEpisode(new RobotEnv(), task, seed, replay(a.actions), hb)
        const hiddenFrom = envA.episode.hiddenFromTick!
        const stillMemory = a.observations.findIndex(
          (o, t) => t >= hiddenFrom && !o.memoryDependent,
        )
        compareFromHidden(
          a,
          b,
          hiddenFrom,
          stillMemory === -1 ? a.observations.length : stillMemory,
        )
      }
    },
  )

  it.each(TASKS.map((t) => t.name))('%s: the instruction is one constant string', (task) => {
    const env = new RobotEnv()
    const seen = new Set(
      Array.from({ length: 20 }, (_, s) => env.reset(task, s, { hiddenSeed: s * 7 }).instruction),
    )
    expect([...seen]).toEqual([taskByName(task).instruction])
  })

  it.each(MEMORY_TASKS)(
    '%s: each episode under its own expert → identical from the hidden tick through the go tick',
    (task) => {
      // What a recent window of ≤ 3 frames holds when the brake lets go: nothing of the hidden bit,
      // although each expert knows its own answer and commands towards it all through the delay.
      for (let seed = 0; seed < SEEDS; seed++) {
        const [ha, hb] = differingPair(task, seed)
        const envA = new RobotEnv()
        const a = runEpisode(envA, task, seed, expertPolicy, ha)
        const b = runEpisode(new RobotEnv(), task, seed, expertPolicy, hb)
        const { hiddenFromTick, holdUntilTick } = envA.episode
        compareFromHidden(a, b, hiddenFromTick!, holdUntilTick + 1)
        // …and at the go tick each expert heads for its own answer (cosine ≈ 1)
        const heads = (run: Run, to: { x: number; y: number }) => {
          const g = run.observations[holdUntilTick].proprio
          const { dx, dy } = run.actions[holdUntilTick]
          const [tx, ty] = [to.x - g[0], to.y - g[1]]
          return (dx * tx + dy * ty) / Math.hypot(dx, dy) / Math.hypot(tx, ty)
        }
        const [ta, tb] = [answer(task, seed, ha), answer(task, seed, hb)]
        expect(heads(a, ta)).toBeGreaterThan(0.999)
        expect(heads(b, tb)).toBeGreaterThan(0.999)
        expect(a.actions[holdUntilTick]).not.toEqual(b.actions[holdUntilTick])
      }
    },
  )
})
