/**
 * @module Random, non-overlapping placement of widgets on the grid, drawn from a seeded stream.
 */
import { type CellRect, rectsOverlap } from '../grid.ts'
import { type Rng, randInt } from '../rng.ts'

/** Random positions tried per rectangle, and fresh layouts tried before the fallback. */
const TRIES = 32
const RESTARTS = 32

interface Span {
  readonly cols: number
  readonly rows: number
  readonly maxCol: number
  readonly maxRow: number
}

/**
 * Place rectangles of the given sizes (cells) inside `area` (cells), at least `gap` cells apart.
 * Each rectangle tries up to 32 uniform positions; if one finds no room the layout starts over
 * (up to 32 times); failing that, each goes to the first free spot in reading order. How many
 * numbers it draws depends only on the sizes, the area and the stream, never on labels.
 * @returns one CellRect per size, same order
 * @throws Error when the rectangles cannot fit
 */
export function placeRects(
  rng: Rng,
  sizes: readonly { cols: number; rows: number }[],
  area: CellRect,
  gap = 1,
): CellRect[] {
  const spans: Span[] = sizes.map(({ cols, rows }) => {
    const maxCol = area.col + area.cols - cols
    const maxRow = area.row + area.rows - rows
    if (maxCol < area.col || maxRow < area.row)
      throw new Error(`placeRects: ${cols}×${rows} > area`)
    return { cols, rows, maxCol, maxRow }
  })
  const fits = (r: CellRect, placed: readonly CellRect[]) =>
    placed.every((p) => !rectsOverlap(p, r, gap))
  const randomLayout = (): CellRect[] | null => {
    const placed: CellRect[] = []
    for (const { cols, rows, maxCol, maxRow } of spans) {
      let found: CellRect | undefined
      for (let t = 0; t < TRIES && !found; t++) {
        const r = {
          col: randInt(rng, area.col, maxCol),
          row: randInt(rng, area.row, maxRow),
          cols,
          rows,
        }
        if (fits(r, placed)) found = r
      }
      if (!found) return null
      placed.push(found)
    }
    return placed
  }
  for (let t = 0; t < RESTARTS; t++) {
    const layout = randomLayout()
    if (layout) return layout
  }
  const placed: CellRect[] = []
  for (const { cols, rows, maxCol, maxRow } of spans) {
    let found: CellRect | undefined
    for (let row = area.row; !found && row <= maxRow; row++)
      for (let col = area.col; !found && col <= maxCol; col++)
        if (fits({ col, row, cols, rows }, placed)) found = { col, row, cols, rows }
    if (!found) throw new Error(`placeRects: no room for ${cols}×${rows} cells`)
    placed.push(found)
  }
  return placed
}
