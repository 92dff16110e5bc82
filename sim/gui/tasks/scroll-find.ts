/**
 * @module Task `scroll-find` (no memory): an alphabetical list of 12 names, 4 visible at a time
 * (rows of 16 px), starting at a random scroll; scroll one row at a time until the named item
 * shows, click it, then say done.
 */
import { finishStage } from '../apps/choice.ts'
import { listStage } from '../apps/list.ts'
import { pick, randInt, sample, stream } from '../rng.ts'
import type { Episode } from '../stage.ts'
import { NAMES } from './words.ts'

const TITLES = ['Contacts', 'Friends', 'Players', 'Team']
/** Items in the list and rows visible at once (4 rows × 2 cells = rows 2–9). */
export const LIST_ITEMS = 12
export const LIST_VISIBLE = 4

/**
 * Build a scroll-find episode from stream 'scroll-find:layout'. The first visible item is 0–8
 * and the target 0–11, so the expert needs ≤ 8 scrolls: ≤ 10 steps with the click and done.
 */
export function scrollFind(seed: number): Episode {
  const rng = stream(seed, 'scroll-find:layout')
  const title = pick(rng, TITLES)
  const items = sample(rng, NAMES, LIST_ITEMS).sort()
  const target = randInt(rng, 0, LIST_ITEMS - 1)
  const scroll = randInt(rng, 0, LIST_ITEMS - LIST_VISIBLE)
  const rect = { col: 1, row: 2, cols: 14, rows: 2 * LIST_VISIBLE }
  return {
    task: 'scroll-find',
    seed,
    instruction: `Find ${items[target]} in the list and click it.`,
    stages: [listStage('list', { title, rect, items, target, scroll }), finishStage()],
  }
}
