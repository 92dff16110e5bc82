import { describe, expect, it } from 'vitest'
import { createFrame, drawText, frameHash, glyphClass, GLYPH_CLASSES } from '../../../sim/gui/raster.ts'
import { GuiEnv } from '../../../sim/gui/index.ts'

const at = (glyphs: Uint8Array, row: number, col: number) => glyphs[row * 16 + col]

describe('glyph map (auxiliary reading target)', () => {
  it('records each glyph in the 8×8 cell of its centre, scale 1 and 2', () => {
    const f = createFrame(128, 96, [0, 0, 0])
    drawText(f, 48, 16, '4752', [255, 255, 255], 2) // centres x = 56 + 16 i, y = 24
    drawText(f, 8, 4, 'A b', [255, 255, 255]) // centres x = 12, 20, 28, y = 8
    const nonzero = [...f.glyphs.entries()].filter(([, v]) => v)
    expect(nonzero).toEqual([
      [1 * 16 + 1, 'A'.charCodeAt(0) - 31],
      [1 * 16 + 3, 'b'.charCodeAt(0) - 31],
      [3 * 16 + 7, '4'.charCodeAt(0) - 31 + 95],
      [3 * 16 + 9, '7'.charCodeAt(0) - 31 + 95],
      [3 * 16 + 11, '5'.charCodeAt(0) - 31 + 95],
      [3 * 16 + 13, '2'.charCodeAt(0) - 31 + 95],
    ])
    expect(glyphClass('~', 2)).toBe(GLYPH_CLASSES - 1)
    expect(glyphClass(' ', 1)).toBe(0)
  })

  it('does not change the pixels, and marks the code of a code-copy screen', () => {
    const env = new GuiEnv()
    const obs = env.reset('code-copy', 7)
    const code = (env.episode as unknown as { code?: string }).code
    const big = [...obs.frame.glyphs].filter((v) => v > 95).map((v) => String.fromCharCode(v - 95 + 31))
    expect(big.join('')).toMatch(/^\d{4}$/)
    if (code) expect(big.join('')).toBe(code)
    const copy = createFrame(128, 96, [0, 0, 0])
    drawText(copy, 0, 0, 'x', [1, 2, 3])
    const again = createFrame(128, 96, [0, 0, 0])
    drawText(again, 0, 0, 'x', [1, 2, 3])
    expect(frameHash(copy)).toBe(frameHash(again))
    expect(at(copy.glyphs, 0, 0)).toBe('x'.charCodeAt(0) - 31)
  })
})
