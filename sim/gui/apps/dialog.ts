/**
 * @module Dialogs and info pages: a message and buttons at random grid positions.
 *
 * A dialog is a framed panel (rows 2–11) with a one-line message (row 3) and its buttons
 * placed at random in rows 6–10, columns 1–14. An info page has text lines from row 2
 * and one button at random in rows 7–11.
 */
import { randInt, type Rng } from '../rng.ts'
import {
  type ButtonWidget,
  type Screen,
  type TextWidget,
  type Widget,
  button,
  buttonSize,
} from '../widgets.ts'
import { placeRects } from './layout.ts'

/** A button label and the id a stage checks clicks against. */
export interface ButtonSpec {
  readonly id: string
  readonly label: string
}

/** The buttons at random non-touching positions inside a cell area. */
export function placeButtons(
  rng: Rng,
  specs: readonly ButtonSpec[],
  area: { col: number; row: number; cols: number; rows: number },
): ButtonWidget[] {
  const rects = placeRects(
    rng,
    specs.map((s) => buttonSize(s.label)),
    area,
  )
  return specs.map((s, i) => button(s.id, rects[i].col, rects[i].row, s.label))
}

/** A dialog screen: panel, a message (≤ 15 characters) on row 3, buttons at random. */
export function dialogScreen(
  rng: Rng,
  title: string,
  message: string,
  buttons: readonly ButtonSpec[],
): Screen {
  return {
    title,
    widgets: [
      { kind: 'panel', rect: { col: 0, row: 2, cols: 16, rows: 10 } },
      { kind: 'text', col: 1, row: 3, text: message },
      ...placeButtons(rng, buttons, { col: 1, row: 6, cols: 14, rows: 5 }),
    ],
  }
}

/**
 * An info page: display widgets (text, toggles; placed by the caller) and one button at a
 * random spot in rows `fromRow`–11 (default 7).
 */
export function pageScreen(
  rng: Rng,
  title: string,
  texts: readonly Widget[],
  next: ButtonSpec,
  fromRow = 7,
): Screen {
  const area = { col: 0, row: fromRow, cols: 16, rows: 12 - fromRow }
  return { title, widgets: [...texts, ...placeButtons(rng, [next], area)] }
}

/** Text lines at column `col`, on every other row from `row` (8 px of space between lines). */
export function textLines(lines: readonly string[], col: number, row: number): TextWidget[] {
  return lines.map((text, i) => ({ kind: 'text', col, row: row + 2 * i, text }))
}

/** A random left column for a text of `chars` cells so it still fits (0–`maxCol`). */
export function textCol(rng: Rng, chars: number, maxCol = 4): number {
  return randInt(rng, 0, Math.max(0, Math.min(maxCol, 16 - chars)))
}
