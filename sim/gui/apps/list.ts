/**
 * @module A scrollable list: find the named item, scrolling one row at a time, and click it.
 */
import { clickCell } from '../actions.ts'
import { type CellRect, targetCell } from '../grid.ts'
import type { Reaction, Stage, StageUi } from '../stage.ts'
import { type ListWidget, type Screen, hitTest, listRowRect, visibleRows } from '../widgets.ts'

/** Id of the list widget. */
export const LIST_ID = 'list'

export interface ListSpec {
  readonly title: string
  /** List rectangle (cells): rows a multiple of 2, last column the scroll bar. */
  readonly rect: CellRect
  readonly items: readonly string[]
  /** Index of the item to click. */
  readonly target: number
  /** First visible item at the start (rows). */
  readonly scroll: number
}

/**
 * A list stage. `scroll dy` (±1) moves the list one row, invalid past either end; clicking the
 * target row goes on, another item's row fails the episode, anything else is invalid; typing is
 * invalid; `done` fails. Expert: scroll toward the target until it is visible, then click it.
 */
export function listStage(name: string, spec: ListSpec): Stage {
  const list = (ui: StageUi): ListWidget => ({
    kind: 'list',
    id: LIST_ID,
    rect: spec.rect,
    items: spec.items,
    scroll: ui.scroll,
  })
  const screen = (ui: StageUi): Screen => ({ title: spec.title, widgets: [list(ui)] })
  const rows = visibleRows(list({ typed: '', scroll: 0 }))
  const maxScroll = Math.max(0, spec.items.length - rows)
  if (spec.scroll < 0 || spec.scroll > maxScroll)
    throw new Error(`${name}: scroll ${spec.scroll} out of range`)
  return {
    name,
    initialUi: { typed: '', scroll: spec.scroll },
    screen,
    react(action, ui): Reaction {
      if (action.type === 'done') return { kind: 'fail' }
      if (action.type === 'type') return { kind: 'invalid' }
      if (action.type === 'scroll') {
        const scroll = ui.scroll + action.dy
        const ok = (action.dy === 1 || action.dy === -1) && scroll >= 0 && scroll <= maxScroll
        return ok ? { kind: 'stay', ui: { ...ui, scroll } } : { kind: 'invalid' }
      }
      const hit = hitTest(screen(ui), action.x, action.y)
      if (hit?.item === undefined) return { kind: 'invalid' }
      return hit.item === spec.target ? { kind: 'next' } : { kind: 'fail' }
    },
    expert(ui) {
      if (spec.target < ui.scroll) return { type: 'scroll', dy: -1 }
      if (spec.target >= ui.scroll + rows) return { type: 'scroll', dy: 1 }
      return clickCell(targetCell(listRowRect(list(ui), spec.target - ui.scroll)))
    },
    memoryDependent: () => false,
  }
}
