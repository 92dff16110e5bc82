import { Packr } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import { decodeMemory, encodeMemory } from '../../memory/codec.ts'
import { MemoryCodecError } from '../../memory/errors.ts'
import { editBlob, joinBlob, splitBlob } from './blob-tools.ts'
import { makeMemory } from './fixtures.ts'

// Blobs crafted with a valid CRC but a bad header or table: the checks after the CRC must hold.
// The fixture: 2 layers, 2 KV heads, 3 tokens, headDim 4 → per layer keys/values 96 B,
// positions/frames 24 B, kinds 6 B (padded to 8); tensors 0…4 are layer 0.
const mem = makeMemory({ layers: 2, kvHeads: 2, headDim: 4, tokens: 3 })
const blob = encodeMemory(mem, { policy: { name: 'full', params: {} }, dtype: 'float32' })
const PAYLOAD_BYTES = 2 * (96 + 96 + 24 + 24 + 8)

type Parts = ReturnType<typeof splitBlob>
const refuse = (edit: (parts: Parts) => void, message: string | RegExp): void => {
  const bad = editBlob(blob, edit)
  expect(() => decodeMemory(bad)).toThrow(MemoryCodecError)
  expect(() => decodeMemory(bad)).toThrow(message)
}

describe('tensor table checks', () => {
  it('accepts the untouched blob re-assembled by the test tools', () => {
    expect(splitBlob(blob).payload.byteLength).toBe(PAYLOAD_BYTES)
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
      ({ header }) => void (header.tensors[9].offset = PAYLOAD_BYTES),
      `points past the ${PAYLOAD_BYTES}-byte payload`,
    ],
    [
      'an unknown tensor dtype',
      ({ header }) => void (header.tensors[2].dtype = 'bfloat16'),
      "unknown dtype 'bfloat16' for tensor layers.0.positions",
    ],
    [
      'an unexpected tensor dtype',
      ({ header }) => void (header.tensors[2].dtype = 'uint8'),
      'tensor layers.0.positions is uint8, expected int32',
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
      ({ header }) => void (header.tensors[3].name = 'layers.0.other'),
      'tensor table lacks layers.0.frames',
    ],
    [
      'a duplicated tensor',
      ({ header }) => void (header.tensors[3].name = 'layers.0.positions'),
      'tensor table lists layers.0.positions twice',
    ],
    [
      'a dropped tensor',
      ({ header }) => void header.tensors.pop(),
      'tensor table has 9 entries, a 2-layer memory has 10',
    ],
    [
      'a huge layer count',
      ({ header }) => void (header.layers = 1e9),
      'a 1000000000-layer memory has 5000000000',
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
    refuse((parts) => payloadView(parts).setFloat32(0, NaN, true), 'layer 0 keys[0] is NaN')
    refuse(
      (parts) => payloadView(parts).setInt32(192 + 4, 10, true),
      'layer 0 head 0 row 1: positions not strictly increasing',
    )
    refuse((parts) => void (parts.payload[240] = 9), 'layer 0 head 0 row 0: unknown token kind 9')
    refuse(({ header }) => void (header.nextPosition = 14), 'position 14 ≥ nextPosition 14')
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
