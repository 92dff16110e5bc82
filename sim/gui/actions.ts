/**
 * @module The agent's actions and their discrete encoding for a policy's action head.
 *
 * Semantics (see env.ts for what a wrong action does):
 * - `click {x, y}` (px): hits the clickable widget whose rectangle contains the point.
 * - `type {text}`: replaces the content of the screen's only text field; exactly 4 digits.
 * - `scroll {dy}`: moves the screen's list by one row; `dy = +1` shows later items, `-1` earlier.
 * - `done`: declares the task finished (correct only on the final "Done" screen).
 *
 * Encoding: one class id in `[0, 196)` plus, for `type`, 4 digit classes in `[0, 10)`:
 * ids `0…191` click the centre of grid cell `row * 16 + col`; 192 scroll up (dy = −1);
 * 193 scroll down (dy = +1); 194 type; 195 done.
 */
import { GRID_CELLS, cellCenter, pointToCell } from './grid.ts'

export type Action =
  | { readonly type: 'click'; readonly x: number; readonly y: number }
  | { readonly type: 'type'; readonly text: string }
  | { readonly type: 'scroll'; readonly dy: number }
  | { readonly type: 'done' }

/** Digits in a `type` action. */
export const TYPE_DIGITS = 4
/** Class ids after the 192 click cells. */
export const SCROLL_UP = GRID_CELLS
export const SCROLL_DOWN = GRID_CELLS + 1
export const TYPE = GRID_CELLS + 2
export const DONE = GRID_CELLS + 3
/** Size of the action head (196 classes). */
export const ACTION_CLASSES = GRID_CELLS + 4

/** An action as a class id plus 4 digits (0–9) for `type`, none otherwise. */
export interface EncodedAction {
  readonly classId: number
  readonly digits: readonly number[]
}

/** True for exactly 4 ASCII digits, the only text a `type` action may carry. */
export function isTypeText(text: string): boolean {
  return /^[0-9]{4}$/.test(text)
}

/** A click at the centre of grid cell `cell` (row-major, `[0, 192)`). */
export function clickCell(cell: number): Action {
  const { x, y } = cellCenter(cell)
  return { type: 'click', x, y }
}

/**
 * Encode an action for supervision. A click maps to the cell that contains its point.
 * @throws RangeError for a click off screen, a scroll other than ±1, or text not 4 digits
 */
export function encodeAction(action: Action): EncodedAction {
  switch (action.type) {
    case 'click': {
      const cell = pointToCell(action.x, action.y)
      if (cell < 0) throw new RangeError(`click (${action.x}, ${action.y}) px is off screen`)
      return { classId: cell, digits: [] }
    }
    case 'scroll':
      if (action.dy !== 1 && action.dy !== -1)
        throw new RangeError(`scroll dy must be ±1, got ${action.dy}`)
      return { classId: action.dy < 0 ? SCROLL_UP : SCROLL_DOWN, digits: [] }
    case 'type':
      if (!isTypeText(action.text))
        throw new RangeError(`type text must be 4 digits, got ${action.text}`)
      return { classId: TYPE, digits: [...action.text].map(Number) }
    case 'done':
      return { classId: DONE, digits: [] }
  }
}

/**
 * Decode a model's choice: a class id and, for `type`, 4 digits (each an integer 0–9).
 * @throws RangeError for an id outside `[0, 196)` or bad digits
 */
export function decodeAction(classId: number, digits: readonly number[] = []): Action {
  if (classId < GRID_CELLS) return clickCell(classId)
  if (classId === SCROLL_UP) return { type: 'scroll', dy: -1 }
  if (classId === SCROLL_DOWN) return { type: 'scroll', dy: 1 }
  if (classId === DONE) return { type: 'done' }
  if (classId !== TYPE)
    throw new RangeError(`action class must be in [0, ${ACTION_CLASSES}), got ${classId}`)
  const text = digits.join('')
  if (!isTypeText(text) || digits.length !== TYPE_DIGITS)
    throw new RangeError(`type needs 4 digits 0–9, got [${digits.join(', ')}]`)
  return { type: 'type', text }
}
