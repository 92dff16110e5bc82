import { afterAll, describe, expect, it } from 'vitest'
import { crc32, crc32Implementation, useCrc32, useZlibCrc32 } from '../../memory/crc32.ts'
import { useNativeCrc32 } from '../../memory/crc32-node.ts'
import { decodeMemory, encodeMemory } from '../../memory/codec.ts'
import { makeMemory } from './fixtures.ts'
import { referenceCrc32 } from './reference.ts'

/** The bitwise reference continued from a previous CRC (pre- and post-inverted, as zlib's). */
function referenceCrc32Continued(bytes: Uint8Array, initial: number): number {
  let crc = ~initial >>> 0
  for (const byte of bytes) {
    crc ^= byte
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1
  }
  return (crc ^ 0xffffffff) >>> 0
}

afterAll(() => useZlibCrc32())

const big = new Uint8Array(70_001)
for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24

for (const which of ['node:zlib', '@node-rs/crc32'] as const)
  describe(`crc32 (${which})`, () => {
    it('is installed', () => {
      if (which === 'node:zlib') useZlibCrc32()
      else expect(useNativeCrc32()).toEqual({ implementation: '@node-rs/crc32' })
      expect(crc32Implementation()).toBe(which)
    })

    it('gives the standard check value for "123456789", and 0 for no bytes', () => {
      expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926)
      expect(crc32(new Uint8Array(0))).toBe(0)
    })

    it('agrees with a bitwise reference on views of every alignment and many lengths, reading only the view', () => {
      for (const [start, end] of [[3, 4000], [0, 1], [1, 2], [5, 70_001], [8, 64], [7, 70_000]]) {
        const view = big.subarray(start, end)
        const got = crc32(view)
        expect(got).toBe(referenceCrc32(view.slice()))
        expect(got).toBeGreaterThanOrEqual(0)
      }
    })

    it('continues a running checksum: crc32(b, crc32(a)) is the CRC of a then b, at any split', () => {
      for (const split of [0, 1, 7, 4000, 69_999, 70_000]) {
        const [a, b] = [big.subarray(1, 1 + split), big.subarray(1 + split)]
        expect(crc32(b, crc32(a))).toBe(referenceCrc32(big.slice(1)))
      }
      expect(crc32(new Uint8Array(0), 0xdeadbeef)).toBe(0xdeadbeef)
    })

    it('takes the running checksum modulo 2^32: a CRC held as a signed int32 continues the same', () => {
      // The first prefix of `big` whose CRC has its top bit set, i.e. is negative as an int32.
      const n = [...Array(64).keys()].map((k) => k + 1).find((k) => referenceCrc32(big.slice(0, k)) >= 2 ** 31)!
      const signed = referenceCrc32(big.slice(0, n)) | 0
      expect(signed).toBeLessThan(0)
      const rest = big.subarray(n, n + 500)
      expect(crc32(rest, signed)).toBe(referenceCrc32(big.slice(0, n + 500)))
    })

    it("is the memory codec's checksum: a blob encoded with one implementation decodes with the other", () => {
      const blob = encodeMemory(makeMemory(), { policy: { name: 'full', params: {} }, dtype: 'float32' })
      useZlibCrc32()
      expect(() => decodeMemory(blob)).not.toThrow()
      useNativeCrc32()
      expect(() => decodeMemory(blob)).not.toThrow()
      if (which === 'node:zlib') useZlibCrc32()
    })
  })

describe('useCrc32', () => {
  it('refuses an implementation that disagrees with node:zlib and keeps the one in use', () => {
    useZlibCrc32()
    expect(() => useCrc32((b, initial = 0) => referenceCrc32Continued(b, initial) ^ (b.length === 1000 ? 1 : 0), 'off-by-one')).toThrow(/'off-by-one' gives .* on 1000 bytes, node:zlib/)
    expect(crc32Implementation()).toBe('node:zlib')
    // One that ignores the running checksum agrees on whole inputs but not when continued.
    expect(() => useCrc32((b) => referenceCrc32(b), 'no-initial')).toThrow(/'no-initial' gives .* continued after/)
    expect(crc32Implementation()).toBe('node:zlib')
    useCrc32((b, initial = 0) => referenceCrc32Continued(b.slice(), initial), 'bitwise')
    expect(crc32Implementation()).toBe('bitwise')
    expect(crc32(big.subarray(0, 100))).toBe(referenceCrc32(big.slice(0, 100)))
    expect(crc32(big.subarray(100, 300), crc32(big.subarray(0, 100)))).toBe(referenceCrc32(big.slice(0, 300)))
    useZlibCrc32()
  })
})
