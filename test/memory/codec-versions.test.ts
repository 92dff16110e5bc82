/**
 * Format versions: blobs written by the version 1 encoder (skvm-v1-blobs.json, made before
 * version 2 existed, with a digest of what the version 1 decoder returned) still decode to exactly
 * that memory, re-encode as version 2 with the same storage to the same memory, sign and verify;
 * version 2 fields in a version 1 blob are refused.
 */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { decodeMemory, encodeMemory, HMAC_BYTES } from '../../memory/codec.ts'
import { MemoryCodecError } from '../../memory/errors.ts'
import { signMemory, tenantMemoryKey, verifyMemory } from '../../memory/signing.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { editBlob, splitBlob } from './blob-tools.ts'
import v1 from './skvm-v1-blobs.json'

/** sha256 of a memory as the fixture records it: scalars as JSON, then each layer's arrays. */
function digest(mem: SessionMemory): string {
  const hash = createHash('sha256')
  const { layers, ...rest } = mem
  hash.update(JSON.stringify(rest))
  for (const l of layers)
    for (const a of [l.keys, l.values, l.positions, l.frames, l.kinds, l.scores])
      if (a) hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
  return hash.digest('hex')
}

const blobs = v1.blobs.map((b) => ({ ...b, bytes: new Uint8Array(Buffer.from(b.blob, 'base64')) }))

describe('version 1 blobs', () => {
  it.each(blobs.map((b) => [b.name, b] as const))(
    '%s: decodes to what version 1 decoded',
    async (_, b) => {
      expect(splitBlob(b.bytes).version).toBe(1)
      let hmacVerified = false
      if (b.signed) {
        await verifyMemory(b.bytes, await tenantMemoryKey(v1.secret, 'dev'), 'dev')
        hmacVerified = true
      }
      const decoded = decodeMemory(b.bytes, undefined, { hmacVerified })
      expect(decoded.version).toBe(1)
      expect(decoded.dtype).toBe(b.decoded.dtype)
      expect(decoded.policy).toEqual(b.decoded.policy)
      expect(digest(decoded.memory)).toBe(b.decoded.digest)
      if (b.decoded.kivi)
        expect(decoded.kivi).toEqual({
          ...b.decoded.kivi,
          statsDtype: 'float32',
          residualDtype: 'float32',
        })
      // Re-encoded with the storage it was written with: version 2, the same memory, fewer bytes.
      const again = encodeMemory(decoded.memory, {
        policy: decoded.policy,
        dtype: decoded.dtype,
        ...(decoded.kivi && { kivi: decoded.kivi }),
      })
      expect(splitBlob(again).version).toBe(2)
      expect(digest(decodeMemory(again).memory)).toBe(b.decoded.digest)
      expect(again.byteLength).toBeLessThan(b.bytes.byteLength - (b.signed ? HMAC_BYTES : 0))
    },
  )

  it('signs an unsigned version 1 blob (the flag set, the version kept) and verifies it', async () => {
    const key = await tenantMemoryKey(v1.secret, 'dev')
    const signed = await signMemory(blobs[0].bytes, key)
    await verifyMemory(signed, key, 'dev')
    expect(splitBlob(signed.subarray(0, signed.byteLength - HMAC_BYTES)).version).toBe(1)
    const decoded = decodeMemory(signed, undefined, { hmacVerified: true })
    expect(digest(decoded.memory)).toBe(blobs[0].decoded.digest)
  })

  it('refuses version 2 fields and a flipped byte in a version 1 blob', () => {
    const kivi = blobs.find((b) => b.name === 'kivi 4-bit')!.bytes
    const withDtypes = editBlob(
      kivi,
      ({ header }) => void (header.kivi.statsDtype = ['float32', 'float32']),
    )
    expect(() => decodeMemory(withDtypes)).toThrow(MemoryCodecError)
    expect(() => decodeMemory(withDtypes)).toThrow(
      'kivi statsDtype is not part of format version 1',
    )
    const flipped = kivi.slice()
    flipped[200] ^= 4
    expect(() => decodeMemory(flipped)).toThrow(/CRC32 mismatch/)
  })

  it('refuses a version 1 table in a version 2 blob', () => {
    const plain = blobs[0].bytes
    const relabelled = editBlob(plain, (parts) => void (parts.version = 2))
    expect(() => decodeMemory(relabelled)).toThrow(
      'tensor table has 12 entries, a 2-layer memory has 8',
    )
  })
})
