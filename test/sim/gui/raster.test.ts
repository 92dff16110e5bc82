import { decode } from 'fast-png'
import { describe, expect, it } from 'vitest'
import { framePng } from '../../../sim/gui/png.ts'
import {
  createFrame,
  drawText,
  fillRect,
  frameHash,
  strokeRect,
  textWidth,
} from '../../../sim/gui/raster.ts'
import { rolloutExpert } from '../../../sim/gui/expert.ts'

const pixel = (f: { width: number; data: Uint8Array }, x: number, y: number) =>
  Array.from(f.data.subarray((y * f.width + x) * 3, (y * f.width + x) * 3 + 3))

describe('raster', () => {
  it('creates a [height, width, 3] frame in one colour', () => {
    const f = createFrame(3, 2, [1, 2, 3])
    expect(f.data).toEqual(Uint8Array.from([1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]))
    expect(() => createFrame(0, 2, [0, 0, 0])).toThrow(RangeError)
    expect(() => createFrame(2.5, 2, [0, 0, 0])).toThrow(/2.5×2/)
  })

  it('fills and outlines rectangles, clipped to the frame', () => {
    const f = createFrame(4, 4, [0, 0, 0])
    fillRect(f, -1, 2, 3, 9, [9, 9, 9]) // covers x 0–1, y 2–3
    const painted = [...Array(16).keys()].filter((i) => f.data[i * 3] === 9)
    expect(painted).toEqual([8, 9, 12, 13])
    const g = createFrame(4, 4, [0, 0, 0])
    strokeRect(g, 0, 0, 4, 4, [5, 5, 5])
    const inner = [5, 6, 9, 10]
    for (let i = 0; i < 16; i++) expect(g.data[i * 3]).toBe(inner.includes(i) ? 0 : 5)
  })

  it('measures text in 8-px cells', () => {
    expect(textWidth('Next')).toBe(32)
    expect(textWidth('4821', 2)).toBe(64)
  })

  it('hashes size and pixels', () => {
    const a = createFrame(8, 8, [0, 0, 0])
    const b = createFrame(8, 8, [0, 0, 0])
    expect(frameHash(a)).toBe(frameHash(b))
    expect(frameHash(a)).toMatch(/^[0-9a-f]{8}$/)
    drawText(b, 0, 0, '.', [0, 0, 1])
    expect(frameHash(b)).not.toBe(frameHash(a))
    expect(frameHash(createFrame(4, 16, [0, 0, 0]))).not.toBe(frameHash(a)) // same bytes, other size
  })
})

describe('PNG', () => {
  it('round-trips every screen of an expert episode through fast-png', () => {
    const run = rolloutExpert('code-entry', 3)
    for (const obs of [...run.steps.map((s) => s.observation), run.final]) {
      const png = decode(obs.png())
      expect([png.width, png.height, png.channels, png.depth]).toEqual([128, 96, 3, 8])
      expect(Uint8Array.from(png.data)).toEqual(obs.frame.data)
    }
  })

  it('encodes the same frame to the same bytes', () => {
    const f = createFrame(16, 8, [200, 10, 10])
    drawText(f, 0, 0, 'Hi', [0, 0, 0])
    expect(framePng(f)).toEqual(framePng(f))
    const png = decode(framePng(f))
    expect(pixel({ width: png.width, data: Uint8Array.from(png.data) }, 0, 0)).toEqual([
      200, 10, 10,
    ])
  })
})
