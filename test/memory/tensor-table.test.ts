import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { decodeMemory, encodeMemory } from '../../memory/codec.ts'
import { MemoryCodecError } from '../../memory/errors.ts'
import { editBlob, joinBlob, splitBlob } from './blob-tools.ts'
import { makeMemory } from './fixtures.ts'

// Blobs crafted with a valid CRC but a bad header or table: the checks after the CRC must hold.
// The fixture: 2 layers, 2 KV heads, 3 tokens, headDim 4 → per layer keys/values 96 B each, then
// the run-length coded metadata (meta-codec.ts), by hand: layer 0 head 0 = marker 0, positions
// 10, 12, 14 as (gap, count) (10, 1) (1, 1) (1, 1), frames 1 1 1 as (zigzag 1 = 2, 3), kinds 0 1 2
// as (0, 1) (1, 1) (2, 1); head 1 = marker 1 (repeat): 16 B at payload offset 192. Layer 1 repeats
// layer 0: meta empty. Tensors 0…2 are layer 0 (keys, values, meta), 3…5 layer 1.
const mem = makeMemory({ layers: 2, kvHeads: 2, headDim: 4, tokens: 3 })
const blob = encodeMemory(mem, { policy: { name: 'full', params: {} }, dtype: 'float32' })
const META_AT = 192
const META = [0, 10, 1, 1, 1, 1, 1, 2, 3, 0, 1, 1, 1, 2, 1, 1]
const PAYLOAD_BYTES = 2 * (96 + 96) + 16

type Parts = ReturnType<typeof splitBlob>
const refuse = (edit: (parts: Parts) => void, message: string | RegExp): void => {
  const bad = editBlob(blob, edit)
  expect(() => decodeMemory(bad)).toThrow(MemoryCodecError)
  expect(() => decodeMemory(bad)).toThrow(message)
}

describe('tensor table checks', () => {
  it('accepts the untouched blob re-assembled by the test tools', () => {
    expect(splitBlob(blob).payload.byteLength).toBe(PAYLOAD_BYTES)
    expect([...splitBlob(blob).payload.subarray(META_AT, META_AT + 16)]).toEqual(META)
    expect(splitBlob(blob).header.tensors[5]).toMatchObject({
      name: 'layers.1.meta',
      byteLength: 0,
    })
    expect(decodeMemory(editBlob(blob, () => {})).memory.tokens).toBe(3)
  })

  it.each<[string, (parts: Parts) => void, string | RegExp]>([
    [
      'overlapping tensors',
      ({ header }) => void (header.tensors[1].offset = 0),
      'tensors layers.0.keys and layers.0.values overlap',
    ],
    [
      'a byteLength that is not product(dims)·itemsize',
      ({ header }) => void (header.tensors[0].byteLength = 88),
      'tensor layers.0.keys has byteLength 88, [2,3,4] float32 needs 96',
    ],
    [
      'a tensor past the payload',
      ({ header }) => void (header.tensors[4].offset = PAYLOAD_BYTES),
      `points past the ${PAYLOAD_BYTES}-byte payload`,
    ],
    [
      'an unknown tensor dtype',
      ({ header }) => void (header.tensors[2].dtype = 'bfloat16'),
      "unknown dtype 'bfloat16' for tensor layers.0.meta",
    ],
    [
      'an unexpected tensor dtype',
      ({ header }) => void (header.tensors[2].dtype = 'int32'),
      'tensor layers.0.meta is int32, expected uint8',
    ],
    [
      'a metadata tensor of rank 2',
      ({ header }) => void (header.tensors[2].dims = [4, 4]),
      'tensor layers.0.meta has dims [4,4], expected [n]',
    ],
    [
      'a metadata tensor whose byteLength disagrees with its dims',
      ({ header }) => void (header.tensors[2].dims = [15]),
      'tensor layers.0.meta has byteLength 16, [15] uint8 needs 15',
    ],
    [
      'an unknown storage dtype',
      ({ header }) => void (header.dtype = 'bfloat16'),
      "unknown storage dtype 'bfloat16'",
    ],
    [
      'dims that disagree with the header',
      ({ header }) => void (header.tensors[0].dims = [2, 4, 3]),
      "tensor layers.0.keys has dims [2,4,3], the header's shape gives [2,3,4]",
    ],
    [
      'an offset that is not 8-aligned',
      ({ header }) => void (header.tensors[1].offset = 100),
      'offset 100 is not 8-byte aligned',
    ],
    [
      'a missing tensor',
      ({ header }) => void (header.tensors[2].name = 'layers.0.other'),
      'tensor table lacks layers.0.meta',
    ],
    [
      'a duplicated tensor',
      ({ header }) => void (header.tensors[5].name = 'layers.0.meta'),
      'tensor table lists layers.0.meta twice',
    ],
    [
      'a dropped tensor',
      ({ header }) => void header.tensors.pop(),
      'tensor table has 5 entries, a 2-layer memory has 6',
    ],
    [
      'a huge layer count',
      ({ header }) => void (header.layers = 1e9),
      'a 1000000000-layer memory has 3000000000',
    ],
    [
      'payload bytes no tensor accounts for',
      (parts) => void (parts.payload = new Uint8Array([...parts.payload, 0, 0, 0, 0, 0, 0, 0, 0])),
      `payload has ${PAYLOAD_BYTES + 8} bytes, the tensor table accounts for ${PAYLOAD_BYTES}`,
    ],
    [
      'an extra header field',
      ({ header }) => void (header.evil = 1),
      /memory header is invalid: .*evil/,
    ],
    [
      'a non-integer count',
      ({ header }) => void (header.seq = 1.5),
      /memory header is invalid: seq/,
    ],
  ])('refuses %s', (_, edit, message) => refuse(edit, message))

  it('refuses data that breaks the memory invariants even with a valid CRC', () => {
    const payloadView = (parts: Parts) =>
      new DataView(parts.payload.buffer, parts.payload.byteOffset)
    const invariant = 'memory blob breaks an invariant: '
    refuse(
      (parts) => payloadView(parts).setFloat32(0, NaN, true),
      `${invariant}layer 0 keys[0] is NaN`,
    )
    refuse(
      (parts) => payloadView(parts).setFloat32(96 + 4 * 5, Infinity, true),
      `${invariant}layer 0 values[5] is Infinity`,
    )
    // META[9] is head 0's first kind, META[7] its frame delta (zigzag 2 = +1; 20 = +10).
    refuse(
      (parts) => void (parts.payload[META_AT + 9] = 9),
      `${invariant}layer 0 head 0 row 0: unknown token kind 9`,
    )
    refuse(
      (parts) => void (parts.payload[META_AT + 7] = 20),
      `${invariant}layer 0 head 0 row 0: frame 10 not in 1…1`,
    )
    refuse(
      ({ header }) => void (header.nextPosition = 14),
      `${invariant}layer 0 head 0 row 2: position 14 ≥ nextPosition 14`,
    )
  })
})

describe('untrusted header bytes', () => {
  const { header, payload } = splitBlob(blob)
  const decodeWith = (headerBytes: Uint8Array) => () => decodeMemory(joinBlob(headerBytes, payload))

  it('refuses extension types (Date, records) before msgpackr builds them', () => {
    const withDate = new Packr({ useRecords: false }).pack({
      ...header,
      model: { id: new Date(0), sha256: 'a' },
    })
    expect(decodeWith(withDate)).toThrow(/memory header is not plain msgpack: type byte 0xd6/)
    const withRecords = new Packr({ useRecords: true }).pack(header)
    expect(decodeWith(withRecords)).toThrow(/not plain msgpack/)
  })

  it('refuses deep nesting without overflowing the stack', () => {
    const deep = new Uint8Array(200_001).fill(0x91) // 200,000 nested one-element arrays
    deep[200_000] = 0xc0
    expect(decodeWith(deep)).toThrow('memory header is not plain msgpack: nesting deeper than 8')
  })

  it('leaves prototypes alone when a header carries __proto__', () => {
    const evil = new Uint8Array([
      0x81,
      0xa9,
      ...new TextEncoder().encode('__proto__'),
      0x81,
      0xa1,
      0x78,
      0x01,
    ])
    expect(decodeWith(evil)).toThrow(/memory header is invalid/)
    expect(({} as Record<string, unknown>).x).toBeUndefined()
  })

  it('refuses an HMAC-flagged blob unless the caller verified its tag (signing.ts)', () => {
    const signed = joinBlob({ ...header, hmac: true }, payload)
    const withTag = new Uint8Array(signed.byteLength + 32)
    withTag.set(signed)
    expect(() => decodeMemory(withTag)).toThrow('memory blob is HMAC-signed: verify its tag first')
  })
})
