/**
 * @module Task `setting-recall` (memory): a settings screen shows one toggle, on or off at
 * random; 2–5 distractor screens follow; then a dialog asks "Was <setting> on?" with Yes and No
 * at random spots. The state is on the first screen only; the question looks the same either way.
 */
import { choiceStage, finishStage } from '../apps/choice.ts'
import { dialogScreen, pageScreen } from '../apps/dialog.ts'
import { pick, randInt, type Rng, shuffle, stream } from '../rng.ts'
import type { Episode, Stage } from '../stage.ts'
import { distractorStages, drawGap } from './distractors.ts'
import { APPS, SETTINGS } from './words.ts'

/**
 * Build a setting-recall episode. Layout from stream 'setting-recall:layout'; the state from
 * stream 'setting-recall:secret' (odd = on), which `secret` (1 = on, 0 = off) replaces without
 * moving anything else.
 * Expert: Next, distractors (gap − 1 steps), Yes or No, done — gap + 2 ≤ 10 steps.
 */
export function settingRecall(seed: number, secret?: number): Episode {
  const rng = stream(seed, 'setting-recall:layout')
  const on = (secret ?? randInt(stream(seed, 'setting-recall:secret'), 0, 1)) % 2 === 1
  const setting = pick(rng, SETTINGS)
  const app = pick(rng, APPS)
  const gap = drawGap(rng)
  const stages: Stage[] = [
    showSetting(rng, setting, on),
    ...distractorStages(rng, app, gap - 1),
    question(rng, setting, on),
    finishStage(),
  ]
  const instruction = `Remember if ${setting} is on, then answer. In menus, open ${app}.`
  return { task: 'setting-recall', seed, instruction, stages }
}

/** The setting's name, a 4 × 2 switch below it, ON/OFF at scale 2 beside it, Next in rows 8–11. */
function showSetting(rng: Rng, setting: string, on: boolean): Stage {
  const row = randInt(rng, 2, 3)
  const col = randInt(rng, 0, 5)
  const screen = pageScreen(
    rng,
    'Settings',
    [
      { kind: 'text', col: randInt(rng, 0, 4), row, text: `${setting}:` },
      { kind: 'toggle', rect: { col, row: row + 2, cols: 4, rows: 2 }, on },
      { kind: 'text', col: col + 5, row: row + 2, text: on ? 'ON' : 'OFF', scale: 2 },
    ],
    { id: 'next', label: 'Next' },
    8,
  )
  return choiceStage('show-setting', screen, 'next')
}

/** "Was <setting> on?" with Yes/No placed at random; the right button depends on memory. */
function question(rng: Rng, setting: string, on: boolean): Stage {
  const buttons = shuffle(rng, [
    { id: 'yes', label: 'Yes' },
    { id: 'no', label: 'No' },
  ])
  const screen = dialogScreen(rng, 'Question', `Was ${setting} on?`, buttons)
  return choiceStage('question', screen, on ? 'yes' : 'no', true)
}
