/**
 * @module The GUI agent adapter: a screenshot (PNG) + the task instruction → prefix (visual tokens
 * then instruction tokens, so the observation window lands on the instruction); the action head →
 * `click(x, y)` on the screen's 8-px grid, `type(text)` (4 digits), `scroll(dy)` or `done`.
 */
import type { ModelManifest } from '../gpu/manifest.ts'
import type { ModelRuntime } from '../gpu/session.ts'
import type { Adapter } from './adapter.ts'
import { encodePrefix, onlyFields } from './encoder.ts'

/** A GUI action, in screen pixels. */
export type GuiAction =
  | { type: 'click'; x: number; y: number }
  | { type: 'type'; text: string }
  | { type: 'scroll'; dy: number }
  | { type: 'done' }

/** Grid cell size in px (sim/gui: 8×8-px cells; clicks go to the cell centre). */
export const CELL_PX = 8

function argmax(x: Float32Array, offset: number, size: number): number {
  let best = 0
  for (let i = 1; i < size; i++) if (x[offset + i] > x[offset + best]) best = i
  return best
}

/** Greedy decode of the GUI action head (segments type, click_x, click_y, digit0…3, scroll). */
export function decodeGuiAction(logits: Float32Array, m: ModelManifest): GuiAction {
  const seg = Object.fromEntries(m.actionHead!.segments.map((s) => [s.name, s]))
  const pick = (name: string) => argmax(logits, seg[name].offset, seg[name].size)
  switch (pick('type')) {
    case 0:
      return { type: 'click', x: pick('click_x') * CELL_PX + CELL_PX / 2, y: pick('click_y') * CELL_PX + CELL_PX / 2 }
    case 1:
      return { type: 'type', text: [0, 1, 2, 3].map((i) => pick(`digit${i}`)).join('') }
    case 2:
      return { type: 'scroll', dy: pick('scroll') === 0 ? -1 : 1 }
    default:
      return { type: 'done' }
  }
}

/**
 * The adapter for a GUI model. Observation: `{ image: PNG bytes, instruction: string }`.
 * @throws BadRequestError for a missing/undecodable image, wrong size, or a bad instruction
 */
export function guiAdapter(encoder: ModelRuntime, m: ModelManifest): Adapter<GuiAction> {
  return {
    kind: 'gui',
    encode: (o) => {
      onlyFields(o, ['image', 'instruction'], m.id)
      return encodePrefix(encoder, m, [o.image], undefined, o.instruction)
    },
    decode: (logits) => decodeGuiAction(logits, m),
  }
}
