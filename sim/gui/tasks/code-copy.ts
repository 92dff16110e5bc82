/**
 * @module Task `code-copy` (no memory): the control for code-entry. One form shows a 4-digit
 * code at scale 2 above its field; type the code you see, Submit, then say done.
 */
import { finishStage } from '../apps/choice.ts'
import { placeButtons } from '../apps/dialog.ts'
import { formStage } from '../apps/form.ts'
import { randInt, stream } from '../rng.ts'
import type { Episode } from '../stage.ts'
import { codeText } from './code-entry.ts'

/**
 * Build a code-copy episode: layout from stream 'code-copy:layout', the code from stream
 * 'code-copy:secret' (or `secret`, 0–9999). Expert: type the code, Submit, done — 3 steps.
 */
export function codeCopy(seed: number, secret?: number): Episode {
  const rng = stream(seed, 'code-copy:layout')
  const code = codeText(secret ?? randInt(stream(seed, 'code-copy:secret'), 0, 9999))
  const codeCol = randInt(rng, 6, 8)
  const field = { col: randInt(rng, 1, 9), row: 5, cols: 6, rows: 2 }
  const [submit] = placeButtons(rng, [{ id: 'submit', label: 'Submit' }], {
    col: 0,
    row: 8,
    cols: 16,
    rows: 4,
  })
  const form = formStage('copy-code', {
    title: 'Verify',
    widgets: [
      { kind: 'text', col: 0, row: 2, text: 'Code:' },
      { kind: 'text', col: codeCol, row: 2, text: code, scale: 2 },
    ],
    field,
    submit,
    code,
    memory: false,
  })
  return {
    task: 'code-copy',
    seed,
    instruction: 'Type the code on screen and submit.',
    stages: [form, finishStage()],
  }
}
