/**
 * @module The screen and its click grid: 128×96 px cut into 16×12 cells of 8×8 px.
 *
 * Every clickable widget's rectangle is a whole number of cells, so an action head can predict a
 * click target as one cell index `row * GRID_COLS + col` in `[0, 192)` and click its centre
 * `(col * 8 + 4, row * 8 + 4)` px. Text at scale 1 is one glyph per cell, so one 8×8 vision
 * patch sees one character.
 */

/** Side of one grid cell (px). */
export const CELL_PX = 8
/** Grid columns (cells); screen width = 16 × 8 = 128 px. */
export const GRID_COLS = 16
/** Grid rows (cells); screen height = 12 × 8 = 96 px. */
export const GRID_ROWS = 12
/** Screen width (px). */
export const SCREEN_WIDTH = GRID_COLS * CELL_PX
/** Screen height (px). */
export const SCREEN_HEIGHT = GRID_ROWS * CELL_PX
/** Number of grid cells (192), the size of a click head. */
export const GRID_CELLS = GRID_COLS * GRID_ROWS

/** A rectangle in grid cells: top-left `(col, row)`, size `cols × rows` (cells). */
export interface CellRect {
  readonly col: number
  readonly row: number
  readonly cols: number
  readonly rows: number
}

/** A rectangle in pixels: top-left `(x, y)`, size `width × height` (px). */
export interface PxRect {
  readonly x: number
  readonly y: number
  readonly width: number
  readonly height: number
}

/** The pixel rectangle covered by a cell rectangle. */
export function cellRectPx(r: CellRect): PxRect {
  return {
    x: r.col * CELL_PX,
    y: r.row * CELL_PX,
    width: r.cols * CELL_PX,
    height: r.rows * CELL_PX,
  }
}

/** True when pixel `(x, y)` (px) is inside the cell rectangle (right/bottom edges excluded). */
export function rectContains(r: CellRect, x: number, y: number): boolean {
  const px = cellRectPx(r)
  return x >= px.x && x < px.x + px.width && y >= px.y && y < px.y + px.height
}

/** The centre of cell index `cell` (row-major, `[0, 192)`) in px: `(col * 8 + 4, row * 8 + 4)`. */
export function cellCenter(cell: number): { x: number; y: number } {
  if (!Number.isInteger(cell) || cell < 0 || cell >= GRID_CELLS)
    throw new RangeError(`cell must be an integer in [0, ${GRID_CELLS}), got ${cell}`)
  const col = cell % GRID_COLS
  const row = (cell - col) / GRID_COLS
  return { x: col * CELL_PX + CELL_PX / 2, y: row * CELL_PX + CELL_PX / 2 }
}

/** The cell index containing pixel `(x, y)` (px), or -1 off screen. */
export function pointToCell(x: number, y: number): number {
  if (!(x >= 0 && x < SCREEN_WIDTH && y >= 0 && y < SCREEN_HEIGHT)) return -1
  return Math.floor(y / CELL_PX) * GRID_COLS + Math.floor(x / CELL_PX)
}

/**
 * The canonical target cell of a rectangle: its middle cell `(col + ⌊cols/2⌋, row + ⌊rows/2⌋)`.
 * The expert clicks this cell's centre; any cell inside the rectangle hits the same widget.
 */
export function targetCell(r: CellRect): number {
  return (r.row + Math.floor(r.rows / 2)) * GRID_COLS + r.col + Math.floor(r.cols / 2)
}

/** True when two cell rectangles share at least one cell once `r` is grown by `gap` cells. */
export function rectsOverlap(r: CellRect, s: CellRect, gap = 0): boolean {
  return (
    r.col - gap < s.col + s.cols &&
    s.col < r.col + r.cols + gap &&
    r.row - gap < s.row + s.rows &&
    s.row < r.row + r.rows + gap
  )
}
