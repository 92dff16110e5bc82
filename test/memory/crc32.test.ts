import { describe, expect, it } from 'vitest'
import { crc32 } from '../../memory/crc32.ts'
import { referenceCrc32 } from './reference.ts'

describe('crc32', () => {
  it('gives the standard check value for "123456789"', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926)
  })

  it('is 0 for no bytes', () => {
    expect(crc32(new Uint8Array(0))).toBe(0)
  })

  it('agrees with a bitwise reference and reads only the view', () => {
    const big = new Uint8Array(4099)
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24
    const view = big.subarray(3, 4000)
    expect(crc32(view)).toBe(referenceCrc32(view.slice()))
    expect(crc32(view)).toBeGreaterThanOrEqual(0)
  })
})
