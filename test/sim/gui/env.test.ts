import { describe, expect, it } from 'vitest'
import { type Action, clickCell } from '../../../sim/gui/actions.ts'
import { GuiEnv, MAX_STEPS } from '../../../sim/gui/env.ts'
import { expertAction } from '../../../sim/gui/expert.ts'
import { frameHash } from '../../../sim/gui/raster.ts'
import { targetCell } from '../../../sim/gui/grid.ts'
import { TASKS } from '../../../sim/gui/tasks.ts'
import { type ButtonWidget, hitTest } from '../../../sim/gui/widgets.ts'
import { expertActions, play } from './episodes.ts'

const NOWHERE: Action = { type: 'click', x: 2, y: 2 } // the title bar: never clickable

describe('GuiEnv determinism', () => {
  it.each(TASKS.map((t) => t.name))('%s: same seed and actions → identical pixels', (task) => {
    for (const seed of [0, 1, 42, 4_000_000_000]) {
      const actions = expertActions(task, seed)
      const a = play(task, seed, actions)
      const b = play(task, seed, actions)
      expect(a.frames.length).toBe(actions.length + 1)
      expect(b.frames).toEqual(a.frames)
      const other = play(task, seed + 1, actions)
      expect(other.frames[0]).not.toEqual(a.frames[0])
    }
  })

  it('gives the same hashes from interleaved envs', () => {
    const envs = [new GuiEnv(), new GuiEnv()]
    const hashes = envs.map(() => [] as string[])
    envs.forEach((e, i) => hashes[i].push(frameHash(e.reset('scroll-find', 9).frame)))
    while (!envs[0].done)
      envs.forEach((e, i) => hashes[i].push(frameHash(e.step(expertAction(e)).frame)))
    expect(hashes[1]).toEqual(hashes[0])
  })
})

describe('GuiEnv actions', () => {
  it('treats clicks on nothing, stray typing and scrolling as invalid, screen unchanged', () => {
    const env = new GuiEnv()
    const first = env.reset('click-button', 5)
    for (const action of [
      NOWHERE,
      { type: 'click', x: -5, y: 400 },
      { type: 'type', text: '1234' },
      { type: 'scroll', dy: 1 },
      { type: 'click', x: Number.NaN, y: 3 },
      { type: 'jump' } as unknown as Action,
    ] as Action[]) {
      const r = env.step(action)
      expect(r).toMatchObject({ invalid: true, done: false, success: false })
      expect(r.frame.data).toEqual(first.frame.data)
    }
    expect(env.step(expertAction(env))).toMatchObject({ invalid: false, done: false, step: 7 })
  })

  it('fails on a wrong button, a wrong code or an early done', () => {
    const env = new GuiEnv()
    env.reset('menu-confirm', 3)
    const menu = env.stage.screen(env.ui)
    const right = expertAction(env) as { x: number; y: number }
    const rightId = hitTest(menu, right.x, right.y)!.id
    const wrong = menu.widgets.find(
      (w): w is ButtonWidget => w.kind === 'button' && w.id !== rightId,
    )!
    const result = env.step(clickCell(targetCell(wrong.rect)))
    expect(result).toMatchObject({ done: true, success: false, outcome: 'fail' })
    expect(() => env.step(right as Action)).toThrow(/over/)

    env.reset('code-copy', 3)
    expect(env.step({ type: 'type', text: '12x4' }).invalid).toBe(true)
    const code = (expertAction(env) as { text: string }).text
    const other = code === '0000' ? '0001' : '0000'
    expect(env.step({ type: 'type', text: other })).toMatchObject({ invalid: false, done: false })
    expect(env.stage.memoryDependent(env.ui)).toBe(false)
    expect(env.step(expertAction(env))).toMatchObject({ invalid: false }) // retypes the code
    env.step({ type: 'type', text: other })
    const submit = env.stage.expert({ typed: code, scroll: 0 })
    expect(env.step(submit)).toMatchObject({ done: true, success: false, outcome: 'fail' })

    env.reset('scroll-find', 3)
    expect(env.step({ type: 'done' })).toMatchObject({ done: true, success: false })
  })

  it('re-typing replaces the field and a memory step stays marked until the code is right', () => {
    const env = new GuiEnv()
    let obs = env.reset('code-entry', 11)
    while (!obs.memoryDependent) obs = env.step(expertAction(env))
    const typeCode = expertAction(env)
    obs = env.step({
      type: 'type',
      text: '0000' === (typeCode as { text: string }).text ? '1111' : '0000',
    })
    expect(obs.memoryDependent).toBe(true)
    obs = env.step(typeCode)
    expect(obs.memoryDependent).toBe(false)
    expect(env.ui.typed).toBe((typeCode as { text: string }).text)
  })

  it('scrolls one row per action and rejects scrolling past the ends', () => {
    const env = new GuiEnv()
    env.reset('scroll-find', 2)
    while (env.ui.scroll > 0) env.step({ type: 'scroll', dy: -1 })
    const start = env.step({ type: 'scroll', dy: -1 })
    expect(start.invalid).toBe(true)
    expect(env.step({ type: 'scroll', dy: 1 }).invalid).toBe(false)
    expect(env.ui.scroll).toBe(1)
    expect(env.step({ type: 'scroll', dy: 2 }).invalid).toBe(true)
  })

  it(`ends unsolved after ${MAX_STEPS} steps`, () => {
    const env = new GuiEnv()
    env.reset('code-entry', 1)
    let last
    for (let i = 0; i < MAX_STEPS; i++) last = env.step(NOWHERE)
    expect(last).toMatchObject({
      done: true,
      success: false,
      outcome: 'step-limit',
      step: MAX_STEPS,
    })
    expect(() => env.step(NOWHERE)).toThrow()
  })

  it('throws before reset and for an unknown task', () => {
    expect(() => new GuiEnv().step({ type: 'done' })).toThrow(/reset/)
    expect(() => new GuiEnv().reset('fly', 1)).toThrow(/unknown task 'fly'.*code-entry/)
  })
})
