/**
 * @module An RGB8 framebuffer and the few drawing calls the widgets need: filled and outlined
 * rectangles and text in the bundled 5×7 font. Plain typed arrays only (no canvas, no Buffer), so
 * it runs unchanged in Node, workerd and a bundle.
 */
import { CELL_PX } from './grid.ts'
import { GLYPH_HEIGHT, GLYPH_WIDTH, glyph } from './font.ts'

/**
 * An RGB8 image: `data` is Uint8Array [height, width, 3], row-major, no padding. `glyphs` is the
 * text drawn on it per 8×8 px cell, Uint8Array [ceil(height / 8), ceil(width / 8)] of glyph
 * classes (see `glyphClass`): the cell holding a glyph's centre gets its class, others 0. Used
 * only as an auxiliary training target (train/gen.ts); the pixels do not depend on it.
 */
export interface Frame {
  readonly width: number
  readonly height: number
  readonly data: Uint8Array
  readonly glyphs: Uint8Array
}

/** Number of glyph classes: 0 none, 1–95 ASCII 32–126 at scale 1, 96–190 the same at scale 2. */
export const GLYPH_CLASSES = 191

/**
 * Glyph class of a character drawn at `scale`: 0 for a space or a character outside ASCII
 * 33–126 (drawn as the font's fallback), else `code − 31` (+ 95 at scale 2).
 */
export function glyphClass(char: string, scale: TextScale): number {
  const code = char.charCodeAt(0)
  if (!(code > 32 && code < 127)) return 0
  return code - 31 + (scale === 2 ? 95 : 0)
}

/** A colour: red, green, blue in 0–255. */
export type Rgb = readonly [r: number, g: number, b: number]

/** Glyph scale: 1 draws 5×7 px glyphs in 8×8 px cells; 2 draws 10×14 in 16×16. */
export type TextScale = 1 | 2

/**
 * A new frame filled with one colour.
 * @param width px, integer ≥ 1
 * @param height px, integer ≥ 1
 * @throws RangeError on a bad size
 */
export function createFrame(width: number, height: number, color: Rgb): Frame {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw new RangeError(`frame size must be positive integers, got ${width}×${height}`)
  const glyphs = new Uint8Array(Math.ceil(height / CELL_PX) * Math.ceil(width / CELL_PX))
  const frame = { width, height, data: new Uint8Array(width * height * 3), glyphs }
  fillRect(frame, 0, 0, width, height, color)
  return frame
}

/** Fill `width × height` px at `(x, y)` px, clipped to the frame. */
export function fillRect(f: Frame, x: number, y: number, width: number, height: number, c: Rgb) {
  const x0 = Math.max(0, x)
  const y0 = Math.max(0, y)
  const x1 = Math.min(f.width, x + width)
  const y1 = Math.min(f.height, y + height)
  for (let row = y0; row < y1; row++)
    for (let col = x0; col < x1; col++) {
      const i = (row * f.width + col) * 3
      f.data[i] = c[0]
      f.data[i + 1] = c[1]
      f.data[i + 2] = c[2]
    }
}

/** A 1-px outline just inside the rectangle `width × height` px at `(x, y)` px. */
export function strokeRect(f: Frame, x: number, y: number, width: number, height: number, c: Rgb) {
  fillRect(f, x, y, width, 1, c)
  fillRect(f, x, y + height - 1, width, 1, c)
  fillRect(f, x, y, 1, height, c)
  fillRect(f, x + width - 1, y, 1, height, c)
}

/** Width of `text` (px): one cell (8 px × scale) per character. */
export function textWidth(text: string, scale: TextScale = 1): number {
  return text.length * CELL_PX * scale
}

/**
 * Draw one line of text: character `i` fills the cell at `(x + 8·scale·i, y)` px, its glyph at
 * offset `(scale, 0)` px inside the cell. Only ink pixels are written; the background stays.
 */
export function drawText(
  f: Frame,
  x: number,
  y: number,
  text: string,
  c: Rgb,
  scale: TextScale = 1,
) {
  const cols = Math.ceil(f.width / CELL_PX)
  for (let i = 0; i < text.length; i++) {
    const bits = glyph(text[i])
    const left = x + i * CELL_PX * scale + scale
    const cx = Math.floor((x + i * CELL_PX * scale + (CELL_PX / 2) * scale) / CELL_PX)
    const cy = Math.floor((y + (CELL_PX / 2) * scale) / CELL_PX)
    const cls = glyphClass(text[i], scale)
    if (cls && cx >= 0 && cx < cols && cy >= 0 && cy * cols < f.glyphs.length) f.glyphs[cy * cols + cx] = cls
    for (let gy = 0; gy < GLYPH_HEIGHT; gy++)
      for (let gx = 0; gx < GLYPH_WIDTH; gx++)
        if (bits[gy * GLYPH_WIDTH + gx])
          fillRect(f, left + gx * scale, y + gy * scale, scale, scale, c)
  }
}

/** FNV-1a 32-bit hash of the size and pixels, as 8 hex digits (for determinism checks). */
export function frameHash(f: Frame): string {
  let h = 0x811c9dc5
  const mix = (byte: number) => {
    h = Math.imul(h ^ byte, 0x01000193)
  }
  for (const v of [f.width, f.height]) for (let s = 0; s < 32; s += 8) mix((v >>> s) & 0xff)
  for (let i = 0; i < f.data.length; i++) mix(f.data[i])
  return (h >>> 0).toString(16).padStart(8, '0')
}
