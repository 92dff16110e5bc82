/**
 * @module Widgets, screens and hit-testing. A screen is plain data (a title and a list of widgets
 * placed on the 8×8 px grid); `renderScreen` draws it and `hitTest` says what a click hits.
 *
 * Clickable: buttons, fields, and the rows of a list (2 cells = 16 px tall each). Text, toggles
 * and panels are display only. Every clickable rectangle is at least 2×2 cells (16×16 px).
 */
import { type CellRect, GRID_COLS, rectContains } from './grid.ts'
import type { TextScale } from './raster.ts'

/** One line of text whose first character fills cell `(col, row)` (and `scale × scale` cells). */
export interface TextWidget {
  readonly kind: 'text'
  readonly col: number
  readonly row: number
  readonly text: string
  readonly scale?: TextScale
}

/** A push button; the label is centred (or starts one cell in, `align: 'left'`, for menus). */
export interface ButtonWidget {
  readonly kind: 'button'
  readonly id: string
  readonly rect: CellRect
  readonly label: string
  readonly align?: 'center' | 'left'
}

/** A text field showing `value` (what the agent typed); the only field on a screen has focus. */
export interface FieldWidget {
  readonly kind: 'field'
  readonly id: string
  readonly rect: CellRect
  readonly value: string
}

/** An on/off switch (display only): green with the knob right when on, grey with it left. */
export interface ToggleWidget {
  readonly kind: 'toggle'
  readonly rect: CellRect
  readonly on: boolean
}

/**
 * A scrollable list: rows of `LIST_ROW_CELLS` cells showing `items[scroll …]`; the last column
 * of `rect` is the scroll bar (not clickable). Visible rows = `rect.rows / LIST_ROW_CELLS`.
 */
export interface ListWidget {
  readonly kind: 'list'
  readonly id: string
  readonly rect: CellRect
  readonly items: readonly string[]
  readonly scroll: number
}

/** A framed box drawn under the widgets after it (dialogs). */
export interface PanelWidget {
  readonly kind: 'panel'
  readonly rect: CellRect
}

export type Widget =
  | TextWidget
  | ButtonWidget
  | FieldWidget
  | ToggleWidget
  | ListWidget
  | PanelWidget

/** What the agent sees: a title bar (row 0, ≤ 16 characters) over widgets, drawn in order. */
export interface Screen {
  readonly title: string
  readonly widgets: readonly Widget[]
}

/** What a click hit: a widget id, plus the item index for a list row. */
export interface Hit {
  readonly id: string
  readonly item?: number
}

/** Height of one list row (cells); 2 cells = 16 px. */
export const LIST_ROW_CELLS = 2

/** Rows a list shows at once. */
export function visibleRows(list: ListWidget): number {
  return Math.floor(list.rect.rows / LIST_ROW_CELLS)
}

/** Size (cells) of a button for `label`: the label plus one cell each side, ≥ 4 × 2 cells. */
export function buttonSize(label: string): { cols: number; rows: number } {
  return { cols: Math.max(4, label.length + 2), rows: 2 }
}

/** A button of `buttonSize(label)` with its top-left cell at `(col, row)`. */
export function button(id: string, col: number, row: number, label: string): ButtonWidget {
  return { kind: 'button', id, rect: { col, row, ...buttonSize(label) }, label }
}

/** The cell rectangle of visible list row `i` (0 = top), scroll bar column excluded. */
export function listRowRect(list: ListWidget, i: number): CellRect {
  const { col, row, cols } = list.rect
  return { col, row: row + i * LIST_ROW_CELLS, cols: cols - 1, rows: LIST_ROW_CELLS }
}

/**
 * The widget under pixel `(x, y)` (px): the last-drawn clickable widget containing it, or null
 * for background, text, toggles, panels, scroll bars and empty list rows.
 */
export function hitTest(screen: Screen, x: number, y: number): Hit | null {
  for (let w = screen.widgets.length - 1; w >= 0; w--) {
    const widget = screen.widgets[w]
    if (widget.kind === 'button' || widget.kind === 'field') {
      if (rectContains(widget.rect, x, y)) return { id: widget.id }
    } else if (widget.kind === 'list') {
      if (!rectContains(widget.rect, x, y)) continue
      for (let i = 0; i < visibleRows(widget); i++) {
        const item = widget.scroll + i
        if (item < widget.items.length && rectContains(listRowRect(widget, i), x, y))
          return { id: widget.id, item }
      }
      return null
    }
  }
  return null
}

/** The widget with this id, or undefined. */
export function findWidget(screen: Screen, id: string): Widget | undefined {
  return screen.widgets.find((w) => 'id' in w && w.id === id)
}

/** True when every text of the screen fits on the 16-column grid (labels inside their rects). */
export function fitsGrid(screen: Screen): boolean {
  if (screen.title.length > GRID_COLS) return false
  return screen.widgets.every((w) => {
    if (w.kind === 'text') return w.col + w.text.length * (w.scale ?? 1) <= GRID_COLS
    if (w.kind === 'button')
      return w.label.length <= w.rect.cols && w.rect.col + w.rect.cols <= GRID_COLS
    if (w.kind === 'list') return w.items.every((s) => s.length <= w.rect.cols - 2)
    return true
  })
}
