import { describe, expect, it } from 'vitest'
import { FIRST_CHAR, GLYPH_HEIGHT, GLYPH_WIDTH, LAST_CHAR, glyph } from '../../../sim/gui/font.ts'
import { createFrame, drawText } from '../../../sim/gui/raster.ts'

const CHARS = Array.from({ length: LAST_CHAR - FIRST_CHAR + 1 }, (_, i) =>
  String.fromCharCode(FIRST_CHAR + i),
)
const key = (bits: Uint8Array) => bits.join('')

describe('bitmap font', () => {
  it('has a 5×7 glyph for every printable ASCII character 32–126', () => {
    expect(CHARS).toHaveLength(95)
    for (const c of CHARS) {
      const bits = glyph(c)
      expect(bits).toHaveLength(GLYPH_WIDTH * GLYPH_HEIGHT)
      expect(bits.every((b) => b === 0 || b === 1)).toBe(true)
      if (c !== ' ')
        expect(
          bits.some((b) => b === 1),
          `glyph '${c}' has ink`,
        ).toBe(true)
    }
  })

  it('draws every character differently, digits and their look-alikes included', () => {
    expect(new Set(CHARS.map((c) => key(glyph(c)))).size).toBe(95)
    const digits = '0123456789'.split('').map((d) => key(glyph(d)))
    expect(new Set(digits).size).toBe(10)
    for (const [a, b] of [
      ['0', 'O'],
      ['1', 'l'],
      ['1', 'I'],
      ['5', 'S'],
      ['8', 'B'],
      ['9', 'g'],
    ])
      expect(key(glyph(a)), `${a} vs ${b}`).not.toBe(key(glyph(b)))
  })

  it('draws unknown characters as ?', () => {
    expect(glyph('é')).toEqual(glyph('?'))
    expect(glyph('\n')).toEqual(glyph('?'))
  })

  it('puts a glyph one px in from the left of its 8-px cell, scaled by whole pixels', () => {
    // '1' row 0 is '..#..' → ink at glyph column 2, so x = 1 + 2 = 3 at scale 1; at scale 2 the
    // second character's cell starts at x = 16, its glyph at 16 + 2 = 18, column 2 at 22 … 23
    const f = createFrame(32, 16, [0, 0, 0])
    drawText(f, 0, 0, '1', [255, 255, 255])
    const ink = (x: number, y: number) => f.data[(y * f.width + x) * 3] === 255
    expect([2, 3, 4].map((x) => ink(x, 0))).toEqual([false, true, false])
    const g = createFrame(32, 16, [0, 0, 0])
    drawText(g, 0, 0, ' 1', [255, 255, 255], 2)
    const inkG = (x: number, y: number) => g.data[(y * g.width + x) * 3] === 255
    expect([21, 22, 23, 24].map((x) => inkG(x, 0))).toEqual([false, true, true, false])
    // row 0 covers y 0–1; row 1 '.##..' covers x 20–23 at y 2–3
    expect([inkG(22, 1), inkG(20, 1), inkG(20, 2), inkG(19, 2)]).toEqual([true, false, true, false])
  })
})
