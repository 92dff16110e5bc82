/**
 * The memory codec as it runs inside workerd (`nodejs_compat`): `encodeMemory`'s uninitialized
 * blob allocation (`Buffer.allocUnsafeSlow` from `node:buffer`) and its slice-by-slice CRC
 * (`node:zlib`'s `crc32` continued from an initial value) give the same bytes as in Node's tests:
 * a blob that owns its ArrayBuffer, equal to one encoded into garbage-filled and zeroed memory, with
 * the bitwise reference CRC, also for tensors larger than one 128 KiB slice.
 */
import { Buffer } from 'node:buffer'
import { describe, expect, it } from 'vitest'
import { decodeMemory, encodeMemory, useBlobAllocator } from '../../memory/codec.ts'
import { crc32, crc32Implementation } from '../../memory/crc32.ts'
import { makeMemory } from '../memory/fixtures.ts'
import { referenceCrc32 } from '../memory/reference.ts'

const POLICY = { name: 'full', params: {} }

describe('memory codec inside workerd', () => {
  it('has node:buffer allocUnsafeSlow over an ArrayBuffer of its own, and node:zlib crc32 that continues', () => {
    const b = Buffer.allocUnsafeSlow(1000)
    expect([b.byteOffset, b.buffer.byteLength]).toEqual([0, 1000])
    expect(crc32Implementation()).toBe('node:zlib')
    const bytes = new TextEncoder().encode('123456789')
    expect(crc32(bytes.subarray(4), crc32(bytes.subarray(0, 4)))).toBe(0xcbf43926)
  })

  it('encodes a blob that owns its buffer, byte-equal to garbage-filled and zeroed allocations', () => {
    const mem = makeMemory({ layers: 2, kvHeads: 2, headDim: 40, tokens: 1001, scores: true })
    for (const dtype of ['float32', 'float16'] as const) {
      const blob = encodeMemory(mem, { policy: POLICY, dtype })
      expect([blob.byteOffset, blob.buffer.byteLength]).toEqual([0, blob.byteLength])
      for (const alloc of [(n: number) => new Uint8Array(n).fill(0xa5), (n: number) => new Uint8Array(n)]) {
        const before = useBlobAllocator(alloc)
        try {
          expect(encodeMemory(mem, { policy: POLICY, dtype })).toEqual(blob)
        } finally {
          useBlobAllocator(before)
        }
      }
      const end = blob.byteLength - 4
      expect(new DataView(blob.buffer).getUint32(end, true)).toBe(referenceCrc32(blob.subarray(0, end)))
      expect(decodeMemory(blob).memory.tokens).toBe(1001)
    }
  })
})
