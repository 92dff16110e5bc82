/**
 * @module Task `code-entry` (memory): a screen shows a 4-digit code and a Next button; 2–5
 * distractor screens follow; then a login form where the agent must type the code and Submit.
 * The code is on the first screen only (not in the instruction, not on any later screen).
 */
import { choiceStage, finishStage } from '../apps/choice.ts'
import { pageScreen, placeButtons, textCol } from '../apps/dialog.ts'
import { formStage } from '../apps/form.ts'
import { pick, randInt, type Rng, stream } from '../rng.ts'
import type { Episode, Stage } from '../stage.ts'
import { distractorStages, drawGap } from './distractors.ts'
import { APPS } from './words.ts'

/** The code for an integer secret in 0–9999: 4 digits, leading zeros kept. */
export const codeText = (secret: number) => String(secret).padStart(4, '0')

/**
 * Build a code-entry episode. Layout, gap and distractors come from stream 'code-entry:layout',
 * the code from stream 'code-entry:secret', so `secret` (0–9999) replaces it without moving
 * anything else.
 * Expert: Next, distractors (gap − 1 steps), type the code, Submit, done — gap + 3 ≤ 11 steps.
 */
export function codeEntry(seed: number, secret?: number): Episode {
  const rng = stream(seed, 'code-entry:layout')
  const code = codeText(secret ?? randInt(stream(seed, 'code-entry:secret'), 0, 9999))
  const app = pick(rng, APPS)
  const gap = drawGap(rng)
  const stages: Stage[] = [
    showCode(rng, code),
    ...distractorStages(rng, app, gap - 1),
    loginForm(rng, code),
    finishStage(),
  ]
  const instruction = `Log in with the code you are shown. In menus, open ${app}.`
  return { task: 'code-entry', seed, instruction, stages }
}

/** "Your code:" then the code at scale 2 (8 × 2 cells), a Next button in rows 7–11. */
function showCode(rng: Rng, code: string): Stage {
  const row = randInt(rng, 2, 3)
  const screen = pageScreen(
    rng,
    'Security',
    [
      { kind: 'text', col: textCol(rng, 10), row, text: 'Your code:' },
      { kind: 'text', col: randInt(rng, 0, 7), row: row + 2, text: code, scale: 2 },
    ],
    { id: 'next', label: 'Next' },
  )
  return choiceStage('show-code', screen, 'next')
}

/** "Enter code:", a 6 × 2 field in row 4, Submit in rows 7–11. */
function loginForm(rng: Rng, code: string): Stage {
  const col = textCol(rng, 11)
  const field = { col: randInt(rng, 1, 9), row: 4, cols: 6, rows: 2 }
  const [submit] = placeButtons(rng, [{ id: 'submit', label: 'Submit' }], {
    col: 0,
    row: 7,
    cols: 16,
    rows: 5,
  })
  return formStage('enter-code', {
    title: 'Log in',
    widgets: [{ kind: 'text', col, row: 2, text: 'Enter code:' }],
    field,
    submit,
    code,
    memory: true,
  })
}
