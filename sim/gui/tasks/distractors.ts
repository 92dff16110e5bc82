/**
 * @module Distractor screens: ordinary steps between seeing a secret and using it. Each needs
 * an action that does not depend on the secret: an info page (click Next, 1 step), a notice
 * dialog (click OK, 1 step), or a menu (click the app the instruction names, then Back on the
 * app's page, 2 steps). Everything is drawn from the layout stream, so the secret cannot leak.
 */
import { choiceStage } from '../apps/choice.ts'
import { dialogScreen, pageScreen, textCol, textLines } from '../apps/dialog.ts'
import { itemId, menuScreen } from '../apps/menu.ts'
import { type Rng, pick, randInt, sample, shuffle } from '../rng.ts'
import type { Stage } from '../stage.ts'
import { APP_LINES, APPS, NOTICES, PAGES } from './words.ts'

type Kind = 'page' | 'notice' | 'menu'

/**
 * The memory gap: steps (= frames) from the screen that shows a secret (step 0) to the step that
 * needs it, in [3, 8]; the distractors between take `gap − 1` steps.
 */
export const MIN_GAP = 3
export const MAX_GAP = 8

/** A gap in [MIN_GAP, MAX_GAP], uniform. */
export function drawGap(rng: Rng): number {
  return randInt(rng, MIN_GAP, MAX_GAP)
}

/**
 * Distractor stages that take the expert exactly `steps` actions (2–7), as 2–5 distractors:
 * `d` drawn in `[max(2, ⌈steps/2⌉), min(5, steps)]`, of which `steps − d` are menus (2 steps)
 * and the rest pages or notices (1 step), in random order.
 * @param app the menu item the instruction names
 * @throws RangeError for steps outside 2–7
 */
export function distractorStages(rng: Rng, app: string, steps: number): Stage[] {
  if (!Number.isInteger(steps) || steps < 2 || steps > 7)
    throw new RangeError(`distractor steps must be 2–7, got ${steps}`)
  const count = randInt(rng, Math.max(2, Math.ceil(steps / 2)), Math.min(5, steps))
  const menus = steps - count
  const kinds: Kind[] = Array.from({ length: count }, (_, i) =>
    i < menus ? 'menu' : rng() < 0.5 ? 'page' : 'notice',
  )
  return shuffle(rng, kinds).flatMap((kind) => {
    if (kind === 'page') return [pageStage(rng)]
    if (kind === 'notice') return [noticeStage(rng)]
    return menuStages(rng, app)
  })
}

/** An info page: title, body lines on rows 2–5, a Next button in rows 7–11. */
function pageStage(rng: Rng): Stage {
  const page = pick(rng, PAGES)
  const width = Math.max(...page.lines.map((l) => l.length))
  const texts = textLines(page.lines, textCol(rng, width), 2 + randInt(rng, 0, 1))
  const screen = pageScreen(rng, page.title, texts, { id: 'next', label: 'Next' })
  return choiceStage('page', screen, 'next')
}

/** A notice dialog with OK and Cancel at random spots; OK continues, Cancel fails. */
function noticeStage(rng: Rng): Stage {
  const notice = pick(rng, NOTICES)
  const buttons = shuffle(rng, [
    { id: 'ok', label: 'OK' },
    { id: 'cancel', label: 'Cancel' },
  ])
  return choiceStage('notice', dialogScreen(rng, notice.title, notice.message, buttons), 'ok')
}

/** A menu of 3–5 apps including `app` (click it), then the app's page (click Back). */
function menuStages(rng: Rng, app: string): Stage[] {
  const others = sample(
    rng,
    APPS.filter((a) => a !== app),
    randInt(rng, 2, 4),
  )
  const menu = menuScreen('Apps', shuffle(rng, [app, ...others]))
  const line = pick(rng, APP_LINES)
  const texts = textLines([line], textCol(rng, line.length), 3)
  const page = pageScreen(rng, app, texts, { id: 'back', label: 'Back' }, 6)
  return [choiceStage('menu', menu, itemId(app)), choiceStage('app-page', page, 'back')]
}
