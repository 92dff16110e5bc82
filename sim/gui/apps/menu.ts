/**
 * @module Menus: a column of full-width items (2 cells tall each, labels left-aligned) from
 * row 2; clicking an item opens it. At most 5 items (rows 2–11).
 */
import type { Screen } from '../widgets.ts'

/** Id of the menu button for item `label`. */
export const itemId = (label: string) => `item:${label}`

/**
 * A menu screen: item `i` is a button at column 1, row `2 + 2i`, 14 × 2 cells.
 * @throws Error for more than 5 items or a label over 12 characters
 */
export function menuScreen(title: string, items: readonly string[]): Screen {
  if (items.length > 5 || items.some((s) => s.length > 12))
    throw new Error(`menu: at most 5 items of ≤ 12 characters, got [${items.join(', ')}]`)
  return {
    title,
    widgets: items.map((label, i) => ({
      kind: 'button',
      id: itemId(label),
      rect: { col: 1, row: 2 + 2 * i, cols: 14, rows: 2 },
      label,
      align: 'left',
    })),
  }
}
