/**
 * Rotation of the memory signing secret: an export names its key id (`X-Stepkv-Key-Id`, 16 hex of
 * SHA-256 over a domain tag and the secret); after a rotation (new `MEMORY_HMAC_SECRET`, the old one
 * in `MEMORY_HMAC_SECRETS_OLD`) blobs signed under either import, and once the old secret leaves
 * the list its blobs are refused (422 memory_signature). Each request runs `app.fetch` with the test
 * environment and the secrets of the step under test.
 */
import { createExecutionContext, env } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { app } from '../../worker/app.ts'
import { api } from '../../sim/client.ts'

const SECRET_A = env.MEMORY_HMAC_SECRET! // the configured one (.dev.vars)
const SECRET_B = 'rotated-memory-hmac-secret-for-the-test-00000000'

function clientWith(secrets: { current: string; old?: string }) {
  const fetcher = async (url: string, init?: RequestInit): Promise<Response> =>
    app.fetch(new Request(url, init), { ...env, MEMORY_HMAC_SECRET: secrets.current, MEMORY_HMAC_SECRETS_OLD: secrets.old }, createExecutionContext())
  return { fetcher, client: api(fetcher) }
}

/** The key id, computed here independently of worker/memory-keys.ts. */
async function expectedKeyId(secret: string) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`stepkv/memory-key-id/v1\0${secret}`)))
  return Buffer.from(d.subarray(0, 8)).toString('hex')
}

async function exportWithId(fetcher: (url: string, init?: RequestInit) => Promise<Response>, id: string) {
  const res = await fetcher(`http://stepkv.test/v1/sessions/${id}/memory`, { headers: { authorization: 'Bearer dev-key-stepkv-0000000000000000' } })
  expect(res.status).toBe(200)
  return { blob: new Uint8Array(await res.arrayBuffer()), keyId: res.headers.get('x-stepkv-key-id') }
}

async function importWith(fetcher: (url: string, init?: RequestInit) => Promise<Response>, id: string, blob: Uint8Array, etag: string, keyId?: string) {
  const res = await fetcher(`http://stepkv.test/v1/sessions/${id}/memory`, {
    method: 'PUT',
    headers: { authorization: 'Bearer dev-key-stepkv-0000000000000000', 'content-type': 'application/x-stepkv-memory', 'if-match': etag, ...(keyId && { 'x-stepkv-key-id': keyId }) },
    body: blob as Uint8Array<ArrayBuffer>,
  })
  return { status: res.status, keyId: res.headers.get('x-stepkv-key-id'), data: (await res.json()) as Record<string, unknown> }
}

describe('memory signing key rotation', () => {
  it('exports name the key id; after a rotation old and new blobs import; dropping the old secret refuses its blobs', async () => {
    const idA = await expectedKeyId(SECRET_A)
    const idB = await expectedKeyId(SECRET_B)
    expect(idA).toMatch(/^[0-9a-f]{16}$/)
    expect(idB).not.toBe(idA)

    const before = clientWith({ current: SECRET_A })
    const id = (await before.client.createSession({ policy: { name: 'full' } })).data.id as string
    for (let seq = 1; seq <= 2; seq++) expect((await before.client.step(id, seq, { text: `rotation step ${seq}` })).status).toBe(200)
    const oldExport = await exportWithId(before.fetcher, id)
    expect(oldExport.keyId).toBe(idA)

    // Rotated: B signs, A is still accepted.
    const rotated = clientWith({ current: SECRET_B, old: JSON.stringify([SECRET_A]) })
    const newExport = await exportWithId(rotated.fetcher, id)
    expect(newExport.keyId).toBe(idB)
    expect(Buffer.from(newExport.blob.subarray(-32)).equals(Buffer.from(oldExport.blob.subarray(-32)))).toBe(false)
    expect(Buffer.from(newExport.blob.subarray(0, -32)).equals(Buffer.from(oldExport.blob.subarray(0, -32)))).toBe(true)
    const etag = async () => (await rotated.client.info(id)).data.etag as string
    let r = await importWith(rotated.fetcher, id, oldExport.blob, await etag())
    expect([r.status, r.keyId]).toEqual([200, idA])
    r = await importWith(rotated.fetcher, id, newExport.blob, await etag(), idB)
    expect([r.status, r.keyId]).toEqual([200, idB])
    // A key id restricts the check to that key: the old blob does not verify under B.
    r = await importWith(rotated.fetcher, id, oldExport.blob, await etag(), idB)
    expect([r.status, r.data.code]).toEqual([422, 'memory_signature'])
    r = await importWith(rotated.fetcher, id, oldExport.blob, await etag(), '00000000deadbeef')
    expect([r.status, r.data.code, r.data.keyId]).toEqual([422, 'memory_signature', '00000000deadbeef'])
    expect(r.data.detail).toMatch(/no longer accepts/)

    // The old secret retired: its blobs are refused, B's still import; a malformed list accepts none of the old.
    for (const old of [undefined, '[]', 'not json', JSON.stringify([SECRET_A.slice(0, 8)])]) {
      const after = clientWith({ current: SECRET_B, old })
      const e = (await after.client.info(id)).data.etag as string
      const refused = await importWith(after.fetcher, id, oldExport.blob, e)
      expect([refused.status, refused.data.code], String(old)).toEqual([422, 'memory_signature'])
      expect((await importWith(after.fetcher, id, newExport.blob, e)).status, String(old)).toBe(200)
    }
    // Nothing in a reply reveals a secret.
    expect(JSON.stringify(r.data)).not.toContain(SECRET_A)
  })

  it('the Worker entry (exports.default) names the configured key in exports', async () => {
    const { exports } = await import('cloudflare:workers')
    const client = api((url, init) => exports.default.fetch(new Request(url, init)))
    const id = (await client.createSession()).data.id as string
    const res = await exports.default.fetch(new Request(`http://stepkv.test/v1/sessions/${id}/memory`, { headers: { authorization: 'Bearer dev-key-stepkv-0000000000000000' } }))
    expect(res.headers.get('x-stepkv-key-id')).toBe(await expectedKeyId(SECRET_A))
  })
})
