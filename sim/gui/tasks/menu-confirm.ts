/**
 * @module Task `menu-confirm` (no memory): a menu of 3–5 commands; open the one the instruction
 * names, then confirm the dialog that asks about it (Yes/No or OK/Cancel at random spots).
 */
import { choiceStage, finishStage } from '../apps/choice.ts'
import { dialogScreen } from '../apps/dialog.ts'
import { itemId, menuScreen } from '../apps/menu.ts'
import { pick, randInt, sample, shuffle, stream } from '../rng.ts'
import type { Episode } from '../stage.ts'
import { COMMANDS } from './words.ts'

const TITLES = ['File', 'Edit', 'Item', 'Message']
const PAIRS = [
  ['Yes', 'No'],
  ['OK', 'Cancel'],
]

/** Build a menu-confirm episode (stream 'menu-confirm:layout'). Expert: command, Yes/OK, done. */
export function menuConfirm(seed: number): Episode {
  const rng = stream(seed, 'menu-confirm:layout')
  const commands = sample(rng, COMMANDS, randInt(rng, 3, 5))
  const target = pick(rng, commands)
  const menu = menuScreen(pick(rng, TITLES), commands)
  const [confirm, decline] = pick(rng, PAIRS)
  const buttons = shuffle(rng, [
    { id: 'confirm', label: confirm },
    { id: 'decline', label: decline },
  ])
  const dialog = dialogScreen(rng, 'Confirm', `${target} it?`, buttons)
  return {
    task: 'menu-confirm',
    seed,
    instruction: `Open ${target} in the menu and confirm.`,
    stages: [
      choiceStage('menu', menu, itemId(target)),
      choiceStage('confirm', dialog, 'confirm'),
      finishStage(),
    ],
  }
}
