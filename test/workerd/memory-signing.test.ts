/**
 * Exported memory is signed per tenant (HMAC-SHA256, key from MEMORY_HMAC_SECRET by HKDF over the
 * tenant id); an import needs a valid tag for the importing tenant, then the model hash and format
 * version are checked. Every refusal leaves the importing session's stored memory byte-identical.
 */
import { exports } from 'cloudflare:workers'
import { beforeAll, describe, expect, it } from 'vitest'
import { CRC_BYTES, HMAC_BYTES, READ_VERSIONS } from '../../memory/codec.ts'
import { verifyMemory } from '../../memory/signing.ts'
import { api, OTHER_KEY } from '../../sim/client.ts'
import { crc32 } from '../../memory/crc32.ts'
import { importCurrent, keyOf, resign } from './signing-tools.ts'

const fetcher = (url: string, init?: RequestInit) => exports.default.fetch(new Request(url, init))
const dev = api(fetcher)
const other = api(fetcher, 'http://stepkv.test', OTHER_KEY)
let devId = ''
let otherId = ''
let exported: Uint8Array = new Uint8Array()

const blobOf = async (client: typeof dev, id: string) => (await client.exportMemory(id)).data as Uint8Array

beforeAll(async () => {
  devId = (await dev.createSession({ policy: { name: 'window', params: { sinkTokens: 2, recentTokens: 30 } } })).data.id
  otherId = (await other.createSession({ policy: { name: 'window', params: { sinkTokens: 2, recentTokens: 30 } } })).data.id
  for (let seq = 1; seq <= 2; seq++) {
    expect((await dev.step(devId, seq, { text: `dev secret ${seq}` })).status).toBe(200)
    expect((await other.step(otherId, seq, { text: `other ${seq}` })).status).toBe(200)
  }
  exported = await blobOf(dev, devId)
})

describe('signed memory export and import', () => {
  it('an export carries the hmac flag and a tag that verifies for its tenant only', async () => {
    const res = await fetcher(`http://stepkv.test/v1/sessions/${devId}/memory`, { headers: { authorization: 'Bearer dev-key-stepkv-0000000000000000' } })
    expect(res.headers.get('content-type')).toBe('application/x-stepkv-memory')
    const view = new DataView(exported.buffer, exported.byteOffset, exported.byteLength)
    const crcAt = exported.byteLength - HMAC_BYTES - CRC_BYTES
    expect(view.getUint32(crcAt, true)).toBe(crc32(exported.subarray(0, crcAt)))
    await verifyMemory(exported, await keyOf('dev'), 'dev')
    await expect(verifyMemory(exported, await keyOf('other'), 'other')).rejects.toThrow(/no valid HMAC-SHA256 for tenant 'other'/)
  })

  it('round trip: the same tenant re-imports its export', async () => {
    const copy = (await dev.createSession({ policy: { name: 'window', params: { sinkTokens: 2, recentTokens: 30 } } })).data.id
    const r = await importCurrent(dev, copy, exported)
    expect(r.status, JSON.stringify(r.data)).toBe(200)
    expect(r.data.seq).toBe(2)
    // The stored memory is the same as the source's: the two exports are identical bytes.
    expect(await blobOf(dev, copy)).toEqual(exported)
  })

  it('a blob signed for tenant dev is refused for tenant other (422, other\'s memory untouched)', async () => {
    const before = await blobOf(other, otherId)
    const r = await importCurrent(other, otherId, exported)
    expect(r.status).toBe(422)
    expect(r.data.code).toBe('memory_signature')
    expect(r.data.detail).toMatch(/no valid HMAC-SHA256 for tenant 'other'/)
    expect(await blobOf(other, otherId)).toEqual(before)
    expect((await other.step(otherId, 3, { text: 'other 3' })).status).toBe(200)
  })

  it('behind a valid tag, the format version and the model hash are still checked', async () => {
    const before = await blobOf(dev, devId)
    // A version this build does not read (prelude bytes 4–5; it reads READ_VERSIONS, writes the
    // newest); fix the CRC and re-sign so only the version is wrong.
    const v2 = exported.slice()
    new DataView(v2.buffer).setUint16(4, Math.max(...READ_VERSIONS) + 1, true)
    const crcAt = v2.byteLength - HMAC_BYTES - CRC_BYTES
    new DataView(v2.buffer).setUint32(crcAt, crc32(v2.subarray(0, crcAt)), true)
    const r = await importCurrent(dev, devId, await resign(v2))
    expect(r.status).toBe(422)
    expect(r.data.code).toBe('memory_version')
    // The model's sha256 in the header: another model's blob (tiny-gqa-tempo session's export).
    const tempo = (await dev.createSession({ model: 'tiny-gqa-tempo', policy: { name: 'window', params: { sinkTokens: 2, recentTokens: 30 } } })).data.id
    const m = await importCurrent(dev, devId, await blobOf(dev, tempo))
    expect(m.status).toBe(422)
    expect(m.data.code).toBe('model_mismatch')
    expect(await blobOf(dev, devId)).toEqual(before)
  })
})
