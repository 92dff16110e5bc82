import { describe, expect, it } from 'vitest'
import { renderScreen } from '../../../sim/gui/render.ts'
import { TASKS } from '../../../sim/gui/tasks.ts'
import { expertActions, play, sameBytes, seeds } from './episodes.ts'

/** Two secrets per task that differ: codes, or on/off. */
const SECRET_PAIRS: Record<string, [number, number][]> = {
  'code-entry': [
    [4821, 1937],
    [0, 9999],
    [1234, 1243],
  ],
  'setting-recall': [[1, 0]],
}

describe.each(TASKS.filter((t) => t.memory).map((t) => [t.name, t] as const))(
  'no leak in %s',
  (name, task) => {
    it('has secret pairs to try', () => expect(SECRET_PAIRS[name]).toBeDefined())

    it('shows the secret only on the first screen: instruction and later stages identical', () => {
      for (const seed of seeds(100))
        for (const [a, b] of SECRET_PAIRS[name]) {
          const ea = task.build(seed, a)
          const eb = task.build(seed, b)
          expect(eb.instruction).toBe(ea.instruction)
          expect(eb.stages.map((s) => s.name)).toEqual(ea.stages.map((s) => s.name))
          const first = (e: typeof ea) => renderScreen(e.stages[0].screen(e.stages[0].initialUi))
          expect(sameBytes(first(eb).data, first(ea).data)).toBe(false)
          for (let i = 1; i < ea.stages.length; i++) {
            const sa = ea.stages[i]
            const sb = eb.stages[i]
            const pa = renderScreen(sa.screen(sa.initialUi)).data
            const pb = renderScreen(sb.screen(sb.initialUi)).data
            expect(sameBytes(pa, pb), `${name} seed ${seed} stage ${i} (${sa.name})`).toBe(true)
          }
        }
    })

    it('same actions → identical frames after step 0 up to the memory step; answers differ', () => {
      for (const seed of seeds(100)) {
        const [a, b] = SECRET_PAIRS[name][0]
        const actions = expertActions(name, seed, a)
        const runA = play(name, seed, actions, a)
        const runB = play(name, seed, actions, b)
        const memoryStep = runA.results.findIndex((r) => r.memoryDependent) + 1
        expect(memoryStep).toBeGreaterThanOrEqual(3)
        for (let i = 1; i <= memoryStep; i++)
          expect(sameBytes(runB.frames[i], runA.frames[i]), `seed ${seed} frame ${i}`).toBe(true)
        expect(runB.results[memoryStep - 1].memoryDependent).toBe(true)
        // the expert's action at the memory step depends on the secret
        expect(expertActions(name, seed, b)[memoryStep]).not.toEqual(actions[memoryStep])
        expect(runA.results.at(-1)!.success).toBe(true)
        expect(runB.results.at(-1)!.success).toBe(false)
      }
    })
  },
)
