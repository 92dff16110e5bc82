/**
 * `encodeMemory` allocates its blob without a zero fill (`Buffer.allocUnsafeSlow`) and checksums it
 * slice by slice while writing it. These tests swap in allocators that hand out garbage-filled
 * memory: the blob must come out the same byte for byte (every byte written, padding and gaps
 * zero), and its CRC must equal a bitwise reference CRC over the whole blob, also for tensors
 * larger than one 128 KiB slice.
 */
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeMemory, encodeMemory, useBlobAllocator, type EncodeOptions } from '../../memory/codec.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { kiviArb, memoryArb } from './arbitrary-memory.ts'
import { makeMemory } from './fixtures.ts'
import { referenceCrc32 } from './reference.ts'
import { splitBlob } from './blob-tools.ts'

const POLICY = { name: 'full', params: {} }
const zeroed = (n: number) => new Uint8Array(n)
const filled = (byte: number) => (n: number) => new Uint8Array(n).fill(byte)

let restore: ((n: number) => Uint8Array) | undefined
afterEach(() => {
  if (restore) useBlobAllocator(restore)
  restore = undefined
})

/** The blob encoded with the given allocator (the default one is put back after). */
function encodeWith(alloc: ((n: number) => Uint8Array) | undefined, mem: SessionMemory, options: EncodeOptions): Uint8Array {
  if (!alloc) return encodeMemory(mem, options)
  const before = useBlobAllocator(alloc)
  try {
    return encodeMemory(mem, options)
  } finally {
    useBlobAllocator(before)
  }
}

/** Checks the blob's padding (header to payload, and after each tensor up to the next 8-byte
 * boundary) is zero and its trailer is the reference CRC of everything before it. */
function expectZeroGapsAndCrc(blob: Uint8Array): void {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength)
  const headerEnd = 10 + view.getUint32(6, true)
  const payloadOffset = Math.ceil(headerEnd / 8) * 8
  expect([...blob.subarray(headerEnd, payloadOffset)].every((b) => b === 0)).toBe(true)
  const { header } = splitBlob(blob)
  const payloadEnd = blob.byteLength - 4
  const tensors = header.tensors as { offset: number; byteLength: number }[]
  tensors.forEach((t, i) => {
    const end = i + 1 < tensors.length ? payloadOffset + tensors[i + 1].offset : payloadEnd
    const gap = blob.subarray(payloadOffset + t.offset + t.byteLength, end)
    expect(gap.length).toBeLessThan(8)
    expect([...gap].every((b) => b === 0)).toBe(true)
  })
  expect(view.getUint32(payloadEnd, true)).toBe(referenceCrc32(blob.subarray(0, payloadEnd)))
}

describe('encodeMemory writes every byte of its blob', () => {
  it('gives the same bytes from garbage-filled memory as from zeroed memory, for every storage', () => {
    const options = fc.oneof(
      fc.constant<EncodeOptions>({ policy: POLICY, dtype: 'float32' }),
      fc.constant<EncodeOptions>({ policy: POLICY, dtype: 'float16' }),
    )
    fc.assert(
      fc.property(
        memoryArb({ maxHeadDim: 7, maxTokens: 30 }).chain((mem) =>
          fc.tuple(
            fc.constant(mem),
            fc.oneof(options, kiviArb(mem.layers.length).map((kivi): EncodeOptions => ({ policy: POLICY, dtype: 'kivi', kivi }))),
            fc.integer({ min: 1, max: 255 }),
          ),
        ),
        ([mem, opts, byte]) => {
          if (opts.dtype === 'float16' && mem.layers.some((l) => [...l.keys, ...l.values].some((x) => Math.abs(x) > 65504))) return
          const reference = encodeWith(zeroed, mem, opts)
          const dirty = encodeWith(filled(byte), mem, opts)
          expect(dirty).toEqual(reference)
          expect(encodeWith(undefined, mem, opts)).toEqual(reference)
          expectZeroGapsAndCrc(dirty)
        },
      ),
      { numRuns: 150, seed: 20261130 },
    )
  })

  it('checksums tensors larger than one slice: the CRC is the reference CRC of the whole blob', () => {
    // 2 heads × 1,001 tokens × 40 dims × 4 bytes = 320,320 bytes per K/V tensor: 3 slices, the
    // last one partial, and a meta stream whose length is not a multiple of 8.
    const mem = makeMemory({ layers: 2, kvHeads: 2, headDim: 40, tokens: 1001, scores: true })
    for (const dtype of ['float32', 'float16'] as const) {
      const blob = encodeWith(filled(0xa5), mem, { policy: POLICY, dtype })
      expect(blob.byteLength).toBeGreaterThan(2 * (1 << 17))
      expect(blob).toEqual(encodeWith(zeroed, mem, { policy: POLICY, dtype }))
      expectZeroGapsAndCrc(blob)
      expect(decodeMemory(blob).memory.tokens).toBe(1001)
    }
  })

  it('checksums tensors of exactly one and two whole slices (no empty last slice, none skipped)', () => {
    // 1 head × 512 tokens × 64 dims × 4 bytes = 131,072 bytes (one 128 KiB slice) per K/V tensor in
    // float32; 1,024 tokens: two whole slices; float16 halves each, giving a half and one slice.
    for (const tokens of [512, 1024]) {
      const mem = makeMemory({ layers: 1, kvHeads: 1, headDim: 64, tokens })
      for (const dtype of ['float32', 'float16'] as const) {
        const blob = encodeWith(filled(0x5a), mem, { policy: POLICY, dtype })
        const { header } = splitBlob(blob)
        const sizes = (header.tensors as { byteLength: number }[]).map((t) => t.byteLength)
        expect(sizes).toContain((tokens * 64 * 4) / (dtype === 'float32' ? 1 : 2))
        expect(blob).toEqual(encodeWith(zeroed, mem, { policy: POLICY, dtype }))
        expectZeroGapsAndCrc(blob)
        expect(decodeMemory(blob).memory.tokens).toBe(tokens)
      }
    }
  })

  it('returns a plain Uint8Array that owns its whole ArrayBuffer', () => {
    const blob = encodeMemory(makeMemory(), { policy: POLICY, dtype: 'float32' })
    expect(Object.getPrototypeOf(blob)).toBe(Uint8Array.prototype)
    expect(blob.byteOffset).toBe(0)
    expect(blob.buffer.byteLength).toBe(blob.byteLength)
  })
})
