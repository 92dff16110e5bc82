import { pack } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { plainMsgpackProblem } from '../../memory/msgpack-scan.ts'

const bytes = (...values: number[]) => new Uint8Array(values)

describe('plainMsgpackProblem', () => {
  it('accepts plain data of every allowed type', () => {
    const plain = {
      a: [1, -1, 300, -70000, 2 ** 40, 1.5, 'x'.repeat(300), true, false, null],
      b: { c: 'd' },
    }
    expect(plainMsgpackProblem(pack(plain))).toBeUndefined()
    expect(plainMsgpackProblem(bytes(0xcb, 0, 0, 0, 0, 0, 0, 0, 0))).toBeUndefined() // float64 0
  })

  it.each([
    ['bin8', bytes(0xc4, 1, 0)],
    ['fixext1', bytes(0xd4, 1, 0)],
    ['ext8', bytes(0xc7, 1, 1, 0)],
    ['never used 0xc1', bytes(0xc1)],
  ])('refuses %s', (_, data) => {
    expect(plainMsgpackProblem(data)).toMatch(/is not plain data/)
  })

  it('refuses non-string keys, trailing bytes, truncation, depth and size', () => {
    expect(plainMsgpackProblem(bytes(0x81, 0x01, 0x02))).toMatch(
      /map key at byte 1 is not a string/,
    )
    expect(plainMsgpackProblem(bytes(0xc0, 0xc0))).toBe('1 trailing bytes')
    expect(plainMsgpackProblem(bytes(0xa5, 0x61))).toMatch(/runs past the end/)
    expect(plainMsgpackProblem(bytes(0x91, 0x91, 0x90), { maxDepth: 1, maxValues: 10 })).toBe(
      'nesting deeper than 1',
    )
    expect(plainMsgpackProblem(bytes(0x93, 0, 0, 0), { maxDepth: 8, maxValues: 3 })).toBe(
      'more than 3 values',
    )
    // array32 claiming 2^32 − 1 elements: stops at the value limit, not after 4 billion steps
    expect(
      plainMsgpackProblem(bytes(0xdd, 0xff, 0xff, 0xff, 0xff, ...new Array(20).fill(0))),
    ).toMatch(/runs past the end|more than/)
  })
})

describe('plainMsgpackProblem with allowBin (request bodies)', () => {
  const limits = { maxDepth: 16, maxValues: 100, allowBin: true }
  it('admits bin8/16/32 and checks their length', () => {
    expect(plainMsgpackProblem(pack({ image: new Uint8Array(300) }), limits)).toBeUndefined()
    expect(plainMsgpackProblem(bytes(0xc4, 2, 1, 2), limits)).toBeUndefined()
    expect(plainMsgpackProblem(bytes(0xc5, 0, 3, 1, 2, 3), limits)).toBeUndefined()
    expect(plainMsgpackProblem(bytes(0xc6, 0, 0, 0, 1, 9), limits)).toBeUndefined()
    expect(plainMsgpackProblem(bytes(0xc6, 0xff, 0xff, 0xff, 0xff, 9), limits)).toMatch(/runs past the end/)
    expect(plainMsgpackProblem(bytes(0xc4, 2, 1, 2))).toMatch(/is not plain data/) // default: no bin
  })
  it('still refuses ext types, and 200,000 nested arrays stop at the depth limit', () => {
    expect(plainMsgpackProblem(bytes(0xd6, 0xff, 0, 0, 0, 0), limits)).toMatch(/0xd6 at byte 0 is not plain data/) // timestamp ext
    expect(plainMsgpackProblem(new Uint8Array(200_000).fill(0x91), limits)).toBe('nesting deeper than 16')
  })
})
