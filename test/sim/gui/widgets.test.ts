import { describe, expect, it } from 'vitest'
import { GRID_CELLS, cellCenter, targetCell } from '../../../sim/gui/grid.ts'
import { TASKS } from '../../../sim/gui/tasks.ts'
import {
  type ListWidget,
  type Screen,
  fitsGrid,
  hitTest,
  listRowRect,
  visibleRows,
} from '../../../sim/gui/widgets.ts'
import { expertScreens, seeds } from './episodes.ts'

/** The id each cell's centre should hit, worked out from the rectangles alone (later wins). */
function expectedHits(screen: Screen): (string | null)[] {
  const hits: (string | null)[] = Array(GRID_CELLS).fill(null)
  for (const w of screen.widgets) {
    const rects =
      w.kind === 'button' || w.kind === 'field'
        ? [{ rect: w.rect, id: w.id }]
        : w.kind === 'list'
          ? Array.from({ length: visibleRows(w) }, (_, i) => i)
              .filter((i) => w.scroll + i < w.items.length)
              .map((i) => ({ rect: listRowRect(w, i), id: `${w.id}#${w.scroll + i}` }))
          : []
    for (const { rect, id } of rects)
      for (let row = rect.row; row < rect.row + rect.rows; row++)
        for (let col = rect.col; col < rect.col + rect.cols; col++) hits[row * 16 + col] = id
    if (w.kind === 'list')
      // the scroll bar column is not clickable
      for (let row = w.rect.row; row < w.rect.row + w.rect.rows; row++)
        hits[row * 16 + w.rect.col + w.rect.cols - 1] = null
  }
  return hits
}

const hitKey = (screen: Screen, cell: number) => {
  const { x, y } = cellCenter(cell)
  const hit = hitTest(screen, x, y)
  return hit === null ? null : hit.item === undefined ? hit.id : `${hit.id}#${hit.item}`
}

describe('hit-testing at cell centres', () => {
  it.each(TASKS.map((t) => t.name))('%s: every cell hits what its rectangle says', (task) => {
    for (const seed of seeds(20))
      for (const screen of expertScreens(task, seed)) {
        const expected = expectedHits(screen)
        for (let cell = 0; cell < GRID_CELLS; cell++)
          expect(hitKey(screen, cell)).toBe(expected[cell])
      }
  })

  it.each(TASKS.map((t) => t.name))(
    '%s: widgets fit the grid and targets are ≥ 16×16 px',
    (task) => {
      for (const seed of seeds(50))
        for (const screen of expertScreens(task, seed)) {
          expect(fitsGrid(screen), screen.title).toBe(true)
          for (const w of screen.widgets) {
            if (w.kind !== 'button' && w.kind !== 'field' && w.kind !== 'list') continue
            expect(w.rect.cols).toBeGreaterThanOrEqual(2)
            expect(w.rect.rows).toBeGreaterThanOrEqual(2)
            expect(w.rect.col + w.rect.cols).toBeLessThanOrEqual(16)
            expect(w.rect.row + w.rect.rows).toBeLessThanOrEqual(12)
            expect(w.rect.row).toBeGreaterThanOrEqual(1) // below the title bar
            if (w.kind === 'button') expect(hitKey(screen, targetCell(w.rect))).toBe(w.id)
          }
        }
    },
  )

  it('maps list rows to items after scrolling, ignores empty rows and the scroll bar', () => {
    const list: ListWidget = {
      kind: 'list',
      id: 'l',
      rect: { col: 1, row: 2, cols: 14, rows: 8 },
      items: ['a', 'b', 'c', 'd', 'e'],
      scroll: 2,
    }
    const screen: Screen = { title: 't', widgets: [list] }
    // row 2 is the first visible row → item 2; rows 6–7 → item 4; rows 8–9 → past the end
    expect(hitTest(screen, 20, 20)).toEqual({ id: 'l', item: 2 })
    expect(hitTest(screen, 20, 7 * 8 + 4)).toEqual({ id: 'l', item: 4 })
    expect(hitTest(screen, 20, 8 * 8 + 4)).toBeNull()
    expect(hitTest(screen, 14 * 8 + 4, 20)).toBeNull() // scroll bar column 14
    expect(hitTest(screen, 4, 20)).toBeNull() // column 0, left of the list
  })
})
