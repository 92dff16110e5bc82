/**
 * @module Task `click-button` (no memory): 3–5 labelled buttons at random spots; click the one
 * the instruction names, then say done.
 */
import { choiceStage, finishStage } from '../apps/choice.ts'
import { placeButtons } from '../apps/dialog.ts'
import { pick, randInt, sample, stream } from '../rng.ts'
import type { Episode } from '../stage.ts'
import { BUTTON_LABELS } from './words.ts'

const TITLES = ['Toolbar', 'Editor', 'Actions', 'Tools']

/** Build a click-button episode (stream 'click-button:layout'). Expert: the named button, done. */
export function clickButton(seed: number): Episode {
  const rng = stream(seed, 'click-button:layout')
  const title = pick(rng, TITLES)
  const labels = sample(rng, BUTTON_LABELS, randInt(rng, 3, 5))
  const target = pick(rng, labels)
  const buttons = placeButtons(
    rng,
    labels.map((label) => ({ id: label, label })),
    { col: 0, row: 2, cols: 16, rows: 10 },
  )
  const screen = { title, widgets: buttons }
  return {
    task: 'click-button',
    seed,
    instruction: `Click ${target}.`,
    stages: [choiceStage('buttons', screen, target), finishStage()],
  }
}
