/**
 * @module The common stage: a static screen where exactly one widget is the right click. Info
 * screens (Next), dialogs, menus and button panels are all choice stages; so is the final
 * "Done" screen, whose right action is `done`.
 */
import { clickCell, type Action } from '../actions.ts'
import { targetCell } from '../grid.ts'
import { EMPTY_UI, type Reaction, type Stage } from '../stage.ts'
import { type Screen, findWidget, hitTest } from '../widgets.ts'

/**
 * A stage whose right action is a click on widget `correctId`. Clicking another clickable widget
 * fails the episode; clicking nothing, typing or scrolling is invalid (no change); `done` fails.
 * The expert clicks the centre of the widget's middle cell (`targetCell`).
 * @param memoryDependent true when picking `correctId` needs something shown on an earlier screen
 * @throws Error if the screen has no clickable widget `correctId`
 */
export function choiceStage(
  name: string,
  screen: Screen,
  correctId: string,
  memoryDependent = false,
): Stage {
  const target = findWidget(screen, correctId)
  if (!target || !('id' in target) || target.kind === 'list')
    throw new Error(`${name}: no button or field '${correctId}' on screen '${screen.title}'`)
  const expertClick = clickCell(targetCell(target.rect))
  return {
    name,
    initialUi: EMPTY_UI,
    screen: () => screen,
    react(action): Reaction {
      if (action.type === 'done') return { kind: 'fail' }
      if (action.type !== 'click') return { kind: 'invalid' }
      const hit = hitTest(screen, action.x, action.y)
      if (!hit) return { kind: 'invalid' }
      return hit.id === correctId ? { kind: 'next' } : { kind: 'fail' }
    },
    expert: () => expertClick,
    memoryDependent: () => memoryDependent,
  }
}

const DONE_SCREEN: Screen = {
  title: 'Done',
  widgets: [
    { kind: 'text', col: 1, row: 4, text: 'Task complete.' },
    { kind: 'text', col: 1, row: 6, text: 'You may stop.' },
  ],
}

/** The last stage of every episode: the expert says `done` (success); anything else is invalid. */
export function finishStage(): Stage {
  const done: Action = { type: 'done' }
  return {
    name: 'finish',
    initialUi: EMPTY_UI,
    screen: () => DONE_SCREEN,
    react: (action) => (action.type === 'done' ? { kind: 'success' } : { kind: 'invalid' }),
    expert: () => done,
    memoryDependent: () => false,
  }
}
