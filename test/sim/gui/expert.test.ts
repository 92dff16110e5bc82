import { describe, expect, it } from 'vitest'
import { MAX_STEPS } from '../../../sim/gui/env.ts'
import { rolloutExpert } from '../../../sim/gui/expert.ts'
import { TASKS } from '../../../sim/gui/tasks.ts'
import { seeds } from './episodes.ts'

const EPISODES = 200

describe.each(TASKS.map((t) => [t.name, t] as const))('expert on %s', (name, task) => {
  const runs = seeds(EPISODES).map((seed) => rolloutExpert(name, seed))

  it(`solves all ${EPISODES} seeded episodes within ${MAX_STEPS} steps`, () => {
    const solved = runs.filter((r) => r.success && r.final.outcome === 'success')
    expect(solved.length).toBe(EPISODES)
    expect(Math.max(...runs.map((r) => r.steps.length))).toBeLessThanOrEqual(MAX_STEPS)
    for (const r of runs) expect(r.steps.at(-1)!.action).toEqual({ type: 'done' })
  })

  it('keeps one instruction per episode and never acts invalidly', () => {
    for (const r of runs) {
      for (const s of r.steps) expect(s.observation.instruction).toBe(r.instruction)
      expect(r.steps.map((s) => s.observation.step)).toEqual(r.steps.map((_, i) => i))
    }
  })

  if (task.memory) {
    it('needs memory on exactly one step, 3–8 steps after the secret showed (step 0)', () => {
      const gaps = runs.map((r) => {
        const marked = r.steps.flatMap((s, i) => (s.observation.memoryDependent ? [i] : []))
        expect(marked).toHaveLength(1)
        return marked[0]
      })
      expect(Math.min(...gaps)).toBe(task.gap![0])
      expect(Math.max(...gaps)).toBe(task.gap![1])
      expect(new Set(gaps).size).toBe(6) // every gap 3–8 occurs in 200 episodes
    })
  } else {
    it('never needs memory', () => {
      for (const r of runs) expect(r.steps.some((s) => s.observation.memoryDependent)).toBe(false)
    })
  }
})

describe('episode variety', () => {
  it.each(TASKS.map((t) => t.name))('%s: different seeds give different first screens', (name) => {
    const first = new Set(
      seeds(50).map((seed) => rolloutExpert(name, seed).steps[0].observation.frame.data.join()),
    )
    expect(first.size).toBeGreaterThan(40)
  })
})
