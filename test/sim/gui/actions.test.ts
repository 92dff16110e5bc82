import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ACTION_CLASSES,
  DONE,
  SCROLL_DOWN,
  SCROLL_UP,
  TYPE,
  clickCell,
  decodeAction,
  encodeAction,
} from '../../../sim/gui/actions.ts'
import { GRID_CELLS, cellCenter, pointToCell, targetCell } from '../../../sim/gui/grid.ts'

describe('grid', () => {
  it('maps each of the 192 cells to its centre and back', () => {
    expect(GRID_CELLS).toBe(192)
    for (let cell = 0; cell < GRID_CELLS; cell++) {
      const { x, y } = cellCenter(cell)
      expect(pointToCell(x, y)).toBe(cell)
    }
    expect(cellCenter(17)).toEqual({ x: 12, y: 12 }) // row 1, col 1
    expect(cellCenter(191)).toEqual({ x: 124, y: 92 })
    expect([pointToCell(-1, 0), pointToCell(128, 0), pointToCell(0, 96)]).toEqual([-1, -1, -1])
    expect(() => cellCenter(192)).toThrow(RangeError)
  })

  it('targets the middle cell of a rectangle', () => {
    // 6 × 2 button at col 3, row 7 → col 3 + 3 = 6, row 7 + 1 = 8 → 8 × 16 + 6
    expect(targetCell({ col: 3, row: 7, cols: 6, rows: 2 })).toBe(134)
  })
})

describe('action encoding', () => {
  it('gives 192 click cells, scroll up/down, type and done', () => {
    expect(ACTION_CLASSES).toBe(196)
    expect(encodeAction({ type: 'click', x: 12, y: 12 })).toEqual({ classId: 17, digits: [] })
    expect(encodeAction({ type: 'click', x: 15.9, y: 8 })).toEqual({ classId: 17, digits: [] })
    expect(encodeAction({ type: 'scroll', dy: -1 }).classId).toBe(SCROLL_UP)
    expect(encodeAction({ type: 'scroll', dy: 1 }).classId).toBe(SCROLL_DOWN)
    expect(encodeAction({ type: 'type', text: '0482' })).toEqual({
      classId: TYPE,
      digits: [0, 4, 8, 2],
    })
    expect(encodeAction({ type: 'done' }).classId).toBe(DONE)
  })

  it('rejects what the head cannot express', () => {
    expect(() => encodeAction({ type: 'click', x: 130, y: 5 })).toThrow(/off screen/)
    expect(() => encodeAction({ type: 'scroll', dy: 2 })).toThrow(/±1/)
    expect(() => encodeAction({ type: 'type', text: '123' })).toThrow(/4 digits/)
    expect(() => decodeAction(196)).toThrow(RangeError)
    expect(() => decodeAction(TYPE, [1, 2, 3])).toThrow(RangeError)
    expect(() => decodeAction(TYPE, [1, 2, 3, 10])).toThrow(RangeError)
  })

  it('round-trips every class (clicks land on cell centres)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: ACTION_CLASSES - 1 }),
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 4, maxLength: 4 }),
        (classId, digits) => {
          const action = decodeAction(classId, classId === TYPE ? digits : [])
          const back = encodeAction(action)
          expect(back.classId).toBe(classId)
          if (classId === TYPE) expect(back.digits).toEqual(digits)
          if (classId < 192) expect(action).toEqual(clickCell(classId))
        },
      ),
    )
  })
})
