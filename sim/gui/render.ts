/**
 * @module Drawing a screen into a 128×96 px RGB8 frame: the theme (colours) and one draw call
 * per widget kind. Text is placed on whole cells horizontally; inside a 16 px tall widget it is
 * centred vertically (4 px down).
 */
import { CELL_PX, GRID_COLS, SCREEN_HEIGHT, SCREEN_WIDTH, cellRectPx } from './grid.ts'
import { type Frame, type Rgb, createFrame, drawText, fillRect, strokeRect } from './raster.ts'
import {
  type ButtonWidget,
  type FieldWidget,
  type ListWidget,
  type Screen,
  type ToggleWidget,
  type Widget,
  listRowRect,
  visibleRows,
} from './widgets.ts'

/** The colours (RGB 0–255). Every button looks the same, so colour never tells the answer. */
export const THEME = {
  background: [232, 232, 228],
  titleBar: [36, 56, 110],
  titleText: [255, 255, 255],
  ink: [16, 16, 16],
  buttonFill: [196, 212, 240],
  buttonEdge: [36, 56, 110],
  fieldFill: [255, 255, 255],
  fieldEdge: [16, 16, 16],
  panelFill: [250, 244, 214],
  panelEdge: [96, 96, 96],
  toggleOn: [52, 160, 80],
  toggleOff: [150, 150, 150],
  knob: [255, 255, 255],
  listFill: [255, 255, 255],
  listRule: [190, 190, 190],
  scrollTrack: [214, 214, 214],
  scrollThumb: [90, 90, 90],
} satisfies Record<string, Rgb>

/**
 * Render a screen: background, title bar (row 0: 8 px, white text), then the widgets in order.
 * @returns a new Frame 128×96 px, data Uint8Array [96, 128, 3]
 */
export function renderScreen(screen: Screen): Frame {
  const frame = createFrame(SCREEN_WIDTH, SCREEN_HEIGHT, THEME.background)
  fillRect(frame, 0, 0, SCREEN_WIDTH, CELL_PX, THEME.titleBar)
  drawText(frame, 0, 0, screen.title.slice(0, GRID_COLS), THEME.titleText)
  for (const widget of screen.widgets) drawWidget(frame, widget)
  return frame
}

function drawWidget(frame: Frame, w: Widget) {
  switch (w.kind) {
    case 'text':
      return drawText(frame, w.col * CELL_PX, w.row * CELL_PX, w.text, THEME.ink, w.scale ?? 1)
    case 'button':
      return drawButton(frame, w)
    case 'field':
      return drawField(frame, w)
    case 'toggle':
      return drawToggle(frame, w)
    case 'list':
      return drawList(frame, w)
    case 'panel': {
      const { x, y, width, height } = cellRectPx(w.rect)
      fillRect(frame, x, y, width, height, THEME.panelFill)
      return strokeRect(frame, x, y, width, height, THEME.panelEdge)
    }
  }
}

/** y (px) of a one-line label centred in a rect of `heightPx`. */
const labelY = (y: number, heightPx: number) => y + (heightPx - CELL_PX) / 2

function drawButton(frame: Frame, b: ButtonWidget) {
  const { x, y, width, height } = cellRectPx(b.rect)
  fillRect(frame, x, y, width, height, THEME.buttonFill)
  strokeRect(frame, x, y, width, height, THEME.buttonEdge)
  const col = b.align === 'left' ? 1 : Math.floor((b.rect.cols - b.label.length) / 2)
  drawText(frame, x + col * CELL_PX, labelY(y, height), b.label, THEME.ink)
}

/** A field: white box, the value from its second cell, a 1 px caret after the value. */
function drawField(frame: Frame, f: FieldWidget) {
  const { x, y, width, height } = cellRectPx(f.rect)
  fillRect(frame, x, y, width, height, THEME.fieldFill)
  strokeRect(frame, x, y, width, height, THEME.fieldEdge)
  drawText(frame, x + CELL_PX, labelY(y, height), f.value, THEME.ink)
  fillRect(frame, x + CELL_PX * (1 + f.value.length) + 1, y + 3, 1, height - 6, THEME.ink)
}

/** A switch: coloured track, white knob (height − 4 px square) inset 2 px at the right when on. */
function drawToggle(frame: Frame, t: ToggleWidget) {
  const { x, y, width, height } = cellRectPx(t.rect)
  fillRect(frame, x, y, width, height, t.on ? THEME.toggleOn : THEME.toggleOff)
  strokeRect(frame, x, y, width, height, THEME.ink)
  const knob = height - 4
  fillRect(frame, t.on ? x + width - 2 - knob : x + 2, y + 2, knob, knob, THEME.knob)
}

/** A list: white box, a rule under each row, labels from the row's second cell, a scroll bar. */
function drawList(frame: Frame, l: ListWidget) {
  const { x, y, width, height } = cellRectPx(l.rect)
  fillRect(frame, x, y, width, height, THEME.listFill)
  const rows = visibleRows(l)
  for (let i = 0; i < rows; i++) {
    const r = cellRectPx(listRowRect(l, i))
    if (i > 0) fillRect(frame, r.x, r.y, r.width, 1, THEME.listRule)
    const item = l.items[l.scroll + i]
    if (item !== undefined) drawText(frame, r.x + CELL_PX, labelY(r.y, r.height), item, THEME.ink)
  }
  const trackX = x + width - CELL_PX
  fillRect(frame, trackX, y, CELL_PX, height, THEME.scrollTrack)
  const total = Math.max(l.items.length, rows)
  const thumbTop = Math.round((l.scroll / total) * height)
  const thumbHeight = Math.max(4, Math.round((rows / total) * height))
  fillRect(frame, trackX + 2, y + thumbTop, CELL_PX - 4, thumbHeight, THEME.scrollThumb)
  strokeRect(frame, x, y, width, height, THEME.fieldEdge)
}
