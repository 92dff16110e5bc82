/**
 * @module Test helpers: run action sequences and collect every stage screen of an episode.
 */
import type { Action } from '../../../sim/gui/actions.ts'
import { GuiEnv, type StepResult } from '../../../sim/gui/env.ts'
import { rolloutExpert } from '../../../sim/gui/expert.ts'
import type { Screen } from '../../../sim/gui/widgets.ts'

/** Frames (raw bytes) seen when playing `actions` on a fresh env: reset frame first. */
export function play(task: string, seed: number, actions: readonly Action[], secret?: number) {
  const env = new GuiEnv()
  const frames = [env.reset(task, seed, secret).frame.data]
  const results: StepResult[] = []
  for (const action of actions) {
    if (env.done) break
    const r = env.step(action)
    results.push(r)
    frames.push(r.frame.data)
  }
  return { frames, results }
}

/** The expert's actions for one episode. */
export const expertActions = (task: string, seed: number, secret?: number): Action[] =>
  rolloutExpert(task, seed, secret).steps.map((s) => s.action)

/** Every screen the expert passes through (one per observation, final included). */
export function expertScreens(task: string, seed: number): Screen[] {
  const env = new GuiEnv()
  env.reset(task, seed)
  const screens = [env.stage.screen(env.ui)]
  while (!env.done) {
    env.step(env.stage.expert(env.ui))
    screens.push(env.stage.screen(env.ui))
  }
  return screens
}

/** A range of seeds 0 … n − 1. */
export const seeds = (n: number) => Array.from({ length: n }, (_, i) => i)

/** True when two frames' bytes are equal (faster than a deep `toEqual` on 36,864 bytes). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}
