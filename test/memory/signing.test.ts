/**
 * Per-tenant HMAC-SHA256 of memory blobs. The expected tag is computed independently with
 * node:crypto (hkdfSync + createHmac) from the documented derivation, not with the code under test.
 */
import { createHmac, hkdfSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { CRC_BYTES, decodeMemory, encodeMemory, HMAC_BYTES } from '../../memory/codec.ts'
import { MemoryCodecError } from '../../memory/errors.ts'
import { signMemory, tenantMemoryKey, verifyMemory } from '../../memory/signing.ts'
import { splitBlob } from './blob-tools.ts'
import { makeMemory } from './fixtures.ts'
import { referenceCrc32 } from './reference.ts'

const SECRET = 'test-secret-0123456789abcdef-0123456789'
const mem = makeMemory({ layers: 2, kvHeads: 2, headDim: 4, tokens: 3 })
const blob = encodeMemory(mem, { policy: { name: 'full', params: {} }, dtype: 'float32' })

/** HKDF-SHA256(secret, salt 'stepkv/memory-hmac/v1', info tenant) → HMAC-SHA256 of the bytes. */
function referenceTag(tenant: string, bytes: Uint8Array): Uint8Array {
  const key = Buffer.from(hkdfSync('sha256', SECRET, 'stepkv/memory-hmac/v1', tenant, 32))
  return new Uint8Array(createHmac('sha256', key).update(bytes).digest())
}

async function refused(bytes: Uint8Array, tenant: string, code: string): Promise<void> {
  const key = await tenantMemoryKey(SECRET, tenant)
  const e = await verifyMemory(bytes, key, tenant).then(() => undefined, (error: unknown) => error)
  expect(e).toBeInstanceOf(MemoryCodecError)
  expect((e as MemoryCodecError).code).toBe(code)
}

describe('memory HMAC', () => {
  it('signs with the documented layout: flag set, CRC over the new bytes, the reference tag last', async () => {
    const signed = await signMemory(blob, await tenantMemoryKey(SECRET, 'dev'))
    expect(signed.byteLength).toBe(blob.byteLength + HMAC_BYTES) // a bool flag is one msgpack byte either way
    expect(splitBlob(signed.subarray(0, signed.byteLength - HMAC_BYTES)).header.hmac).toBe(true)
    const crcAt = signed.byteLength - HMAC_BYTES - CRC_BYTES
    expect(new DataView(signed.buffer).getUint32(crcAt, true)).toBe(referenceCrc32(signed.subarray(0, crcAt)))
    const tagAt = signed.byteLength - HMAC_BYTES
    expect([...signed.subarray(tagAt)]).toEqual([...referenceTag('dev', signed.subarray(0, tagAt))])
    // The payload is the stored one, byte for byte.
    expect(splitBlob(signed.subarray(0, tagAt)).payload).toEqual(splitBlob(blob).payload)
  })

  it('verifies for the signing tenant and decodes to the same memory', async () => {
    const key = await tenantMemoryKey(SECRET, 'dev')
    const signed = await signMemory(blob, key)
    await verifyMemory(signed, key, 'dev')
    const decoded = decodeMemory(signed, undefined, { hmacVerified: true })
    expect(decoded.memory.tokens).toBe(3)
    expect([...decoded.memory.layers[1].keys]).toEqual([...mem.layers[1].keys])
    expect(decoded.memory.seq).toBe(mem.seq)
  })

  it('refuses a blob signed for tenant A when tenant B imports it, and under another secret', async () => {
    const signed = await signMemory(blob, await tenantMemoryKey(SECRET, 'tenant-a'))
    await refused(signed, 'tenant-b', 'memory_signature')
    await refused(signed, 'tenant-a ', 'memory_signature')
    const otherSecret = await tenantMemoryKey(SECRET + '!', 'tenant-a')
    await expect(verifyMemory(signed, otherSecret, 'tenant-a')).rejects.toThrow(/no valid HMAC-SHA256 for tenant 'tenant-a'/)
  })

  it('refuses one flipped bit anywhere (prelude, header, payload, CRC, tag), unsigned and short blobs', async () => {
    const signed = await signMemory(blob, await tenantMemoryKey(SECRET, 'dev'))
    for (const at of [0, 5, 12, 200, signed.byteLength - 40, signed.byteLength - 33, signed.byteLength - 1]) {
      const bad = signed.slice()
      bad[at] ^= 0x01
      await refused(bad, 'dev', 'memory_signature')
    }
    await refused(blob, 'dev', 'memory_signature')
    await refused(signed.subarray(0, 46), 'dev', 'memory_signature') // truncated: the tag moves
    await refused(new Uint8Array(45), 'dev', 'memory_truncated')
  })

  it('decodeMemory refuses a flagged blob unless verified, and an unflagged one claimed verified', async () => {
    const signed = await signMemory(blob, await tenantMemoryKey(SECRET, 'dev'))
    expect(() => decodeMemory(signed)).toThrow(/HMAC-signed: verify its tag first/)
    // Claimed verified, an unsigned blob is read with a 36-byte trailer: its CRC no longer lines up.
    expect(() => decodeMemory(blob, undefined, { hmacVerified: true })).toThrow(/CRC32 mismatch/)
    // An unflagged blob with a 32-byte tag behind a valid CRC is refused by the flag check.
    const tagged = new Uint8Array(blob.byteLength + HMAC_BYTES)
    tagged.set(blob)
    expect(() => decodeMemory(tagged, undefined, { hmacVerified: true })).toThrow(/not HMAC-signed/)
    await expect(signMemory(signed, {} as CryptoKey)).rejects.toThrow(MemoryCodecError) // already signed
  })

  it('refuses a secret shorter than 32 bytes', () => {
    expect(() => tenantMemoryKey('short', 'dev')).toThrow(/≥ 32 bytes, got 5/)
  })
})
