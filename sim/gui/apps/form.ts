/**
 * @module A one-field form: type a 4-digit code into the field, then click Submit.
 */
import { clickCell, isTypeText, type Action } from '../actions.ts'
import { type CellRect, targetCell } from '../grid.ts'
import type { Reaction, Stage, StageUi } from '../stage.ts'
import { type ButtonWidget, type Screen, type Widget, hitTest } from '../widgets.ts'

/** Id of the form's field. */
export const FIELD_ID = 'field'

export interface FormSpec {
  readonly title: string
  /** Static widgets (labels, a shown code); the field and Submit are added after them. */
  readonly widgets: readonly Widget[]
  /** The field's rectangle (cells), ≥ 6 × 2 for 4 digits and the caret. */
  readonly field: CellRect
  readonly submit: ButtonWidget
  /** The right 4 digits. */
  readonly code: string
  /** True when the code was shown only on an earlier screen (code entry), false when visible. */
  readonly memory: boolean
}

/**
 * A form stage. `type` with 4 digits replaces the field's content (any other text is invalid);
 * Submit goes on when the field holds the code and fails the episode otherwise; clicking the
 * field or the background, or scrolling, is invalid; `done` fails.
 * Expert: type the code (memory-dependent when `memory`), then click Submit (not dependent).
 */
export function formStage(name: string, spec: FormSpec): Stage {
  const screen = (ui: StageUi): Screen => ({
    title: spec.title,
    widgets: [
      ...spec.widgets,
      { kind: 'field', id: FIELD_ID, rect: spec.field, value: ui.typed },
      spec.submit,
    ],
  })
  const submit = clickCell(targetCell(spec.submit.rect))
  const typeCode: Action = { type: 'type', text: spec.code }
  return {
    name,
    initialUi: { typed: '', scroll: 0 },
    screen,
    react(action, ui): Reaction {
      if (action.type === 'done') return { kind: 'fail' }
      if (action.type === 'type')
        return isTypeText(action.text)
          ? { kind: 'stay', ui: { ...ui, typed: action.text } }
          : { kind: 'invalid' }
      if (action.type !== 'click') return { kind: 'invalid' }
      const hit = hitTest(screen(ui), action.x, action.y)
      if (hit?.id !== spec.submit.id) return { kind: 'invalid' }
      return ui.typed === spec.code ? { kind: 'next' } : { kind: 'fail' }
    },
    expert: (ui) => (ui.typed === spec.code ? submit : typeCode),
    memoryDependent: (ui) => spec.memory && ui.typed !== spec.code,
  }
}
