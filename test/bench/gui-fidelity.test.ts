import { describe, expect, it } from 'vitest'
import { guiActionKl, sameGuiAction } from '../../bench/gui-fidelity.ts'
import type { ModelManifest } from '../../gpu/manifest.ts'

// A GUI action head as the trained models have it: type 4, click_x 16, click_y 12, digit0..3 10, scroll 2.
const sizes: [string, number][] = [['type', 4], ['click_x', 16], ['click_y', 12], ['digit0', 10], ['digit1', 10], ['digit2', 10], ['digit3', 10], ['scroll', 2]]
let offset = 0
const segments = sizes.map(([name, size]) => {
  const s = { name, kind: 'categorical', offset, size, meaning: '' }
  offset += size
  return s
})
const manifest = { actionHead: { segments }, vocabSize: offset } as unknown as ModelManifest

/** KL(p‖q) of one categorical segment, straight from the definition (softmax in float64). */
function klRef(p: number[], q: number[]): number {
  const sm = (x: number[]) => {
    const e = x.map((v) => Math.exp(v))
    const z = e.reduce((a, b) => a + b, 0)
    return e.map((v) => v / z)
  }
  const P = sm(p)
  const Q = sm(q)
  return P.reduce((s, pi, i) => s + pi * Math.log(pi / Q[i]), 0)
}

describe('gui-fidelity agreement and KL', () => {
  it('agreement: same type; clicks in the same 8×8 cell; same text; same scroll direction', () => {
    expect(sameGuiAction({ type: 'click', x: 12, y: 20 }, { type: 'click', x: 15, y: 16 })).toBe(true)
    expect(sameGuiAction({ type: 'click', x: 12, y: 20 }, { type: 'click', x: 16, y: 20 })).toBe(false)
    expect(sameGuiAction({ type: 'type', text: '0123' }, { type: 'type', text: '0124' })).toBe(false)
    expect(sameGuiAction({ type: 'scroll', dy: 1 }, { type: 'scroll', dy: 1 })).toBe(true)
    expect(sameGuiAction({ type: 'scroll', dy: 1 }, { type: 'scroll', dy: -1 })).toBe(false)
    expect(sameGuiAction({ type: 'done' }, { type: 'click', x: 4, y: 4 })).toBe(false)
    expect(sameGuiAction({ type: 'done' }, { type: 'done' })).toBe(true)
  })

  it('KL sums the segments of the reference action only, matching the definition', () => {
    const p = new Float32Array(offset).map((_, i) => Math.sin(i * 1.3) * 2)
    const q = new Float32Array(offset).map((_, i) => Math.cos(i * 0.7) * 1.5)
    const seg = (x: Float32Array, name: string) => {
      const s = segments.find((t) => t.name === name)!
      return [...x.subarray(s.offset, s.offset + s.size)]
    }
    const click = klRef(seg(p, 'type'), seg(q, 'type')) + klRef(seg(p, 'click_x'), seg(q, 'click_x')) + klRef(seg(p, 'click_y'), seg(q, 'click_y'))
    expect(guiActionKl(p, q, { type: 'click', x: 4, y: 4 }, manifest)).toBeCloseTo(click, 6)
    const typed = ['type', 'digit0', 'digit1', 'digit2', 'digit3'].reduce((s, n) => s + klRef(seg(p, n), seg(q, n)), 0)
    expect(guiActionKl(p, q, { type: 'type', text: '1234' }, manifest)).toBeCloseTo(typed, 6)
    expect(guiActionKl(p, q, { type: 'done' }, manifest)).toBeCloseTo(klRef(seg(p, 'type'), seg(q, 'type')), 6)
    expect(guiActionKl(p, p, { type: 'type', text: '1234' }, manifest)).toBeCloseTo(0, 12)
  })
})
