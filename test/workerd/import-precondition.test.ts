/**
 * A memory import names the state it replaces (If-Match with the session's ETag, `"<seq>.<gen>"`):
 * an import racing a step is refused (412) and the step survives; no If-Match → 428. A blob whose
 * policy or model id differs from the session's is refused (422), not silently adopted.
 */
import { exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import manifest from '../../models/tiny-gqa/manifest.json'
import { decodeMemory, encodeMemory } from '../../memory/codec.ts'
import { api } from '../../sim/client.ts'
import { signFor } from './signing-tools.ts'

const fetcher = (url: string, init?: RequestInit) => exports.default.fetch(new Request(url, init))
const client = api(fetcher)
const WINDOW = { name: 'window', params: { sinkTokens: 2, recentTokens: 30 } }

async function session(steps: number, policy: unknown = WINDOW) {
  const id = (await client.createSession({ policy })).data.id as string
  for (let seq = 1; seq <= steps; seq++) expect((await client.step(id, seq, { text: `obs ${seq} of ${id}` })).status).toBe(200)
  return id
}
const blobOf = async (id: string) => (await client.exportMemory(id)).data as Uint8Array

describe('conditional import (If-Match)', () => {
  it('ETags: "0.0" at creation, "<seq>.<writes>" after steps, in info, its header, step replies and exports', async () => {
    const id = (await client.createSession({ policy: WINDOW })).data.id as string
    expect((await client.info(id)).data.etag).toBe('"0.0"')
    const step = await client.step(id, 1, { text: 'hello' })
    expect(step.data.memory.etag).toBe('"1.1"')
    const res = await fetcher(`http://stepkv.test/v1/sessions/${id}`, { headers: { authorization: 'Bearer dev-key-stepkv-0000000000000000' } })
    expect(res.headers.get('etag')).toBe('"1.1"')
    expect((await res.json() as { etag: string }).etag).toBe('"1.1"')
    const exp = await fetcher(`http://stepkv.test/v1/sessions/${id}/memory`, { headers: { authorization: 'Bearer dev-key-stepkv-0000000000000000' } })
    expect(exp.headers.get('etag')).toBe('"1.1"')
    // A replayed step does not write: same ETag.
    expect((await client.step(id, 1, { text: 'hello' })).data.memory.etag).toBe('"1.1"')
    expect((await client.info(id)).data.etag).toBe('"1.1"')
  })

  it('no If-Match, or If-Match: *, or a malformed one → 428; nothing changes', async () => {
    const id = await session(2)
    const before = await blobOf(id)
    for (const ifMatch of [undefined, '*', '2.2', 'garbage']) {
      const r = await client.importMemory(id, before, ifMatch)
      expect(r.status, String(ifMatch)).toBe(428)
      expect(r.data.code).toBe('precondition_required')
      expect(r.data.detail).toMatch(/If-Match/)
    }
    expect(await blobOf(id)).toEqual(before)
    expect((await client.info(id)).data.etag).toBe('"2.2"')
  })

  it('an import racing a step is refused with 412 and the step is kept', async () => {
    const id = await session(2)
    const { etag } = (await client.info(id)).data
    const snapshot = await blobOf(id) // the client reads state "2.2" and means to roll back to it later
    expect((await client.step(id, 3, { text: 'step 3 lands meanwhile' })).status).toBe(200)
    const afterStep = await blobOf(id)
    const r = await client.importMemory(id, snapshot, etag)
    expect(r.status).toBe(412)
    expect(r.data.code).toBe('precondition_failed')
    expect(r.data.etag).toBe('"3.3"')
    expect(r.data.seq).toBe(3)
    expect(await blobOf(id)).toEqual(afterStep)
    expect((await client.step(id, 4, { text: 'step 4' })).status).toBe(200)
    // With the current ETag the same rollback goes through: seq 2 again, a new generation.
    const ok = await client.importMemory(id, snapshot, (await client.info(id)).data.etag)
    expect(ok.status, JSON.stringify(ok.data)).toBe(200)
    expect(ok.data.seq).toBe(2)
    expect(ok.data.etag).toBe('"2.5"')
  })

  it('an ETag never repeats: importing a blob at the same seq bumps the generation; weak tags never match', async () => {
    const id = await session(2)
    const blob = await blobOf(id)
    const first = await client.importMemory(id, blob, '"2.2"')
    expect(first.status).toBe(200)
    expect(first.data.etag).toBe('"2.3"')
    expect((await client.importMemory(id, blob, '"2.2"')).status).toBe(412)
    expect((await client.importMemory(id, blob, 'W/"2.3"')).status).toBe(412)
    expect((await client.importMemory(id, blob, '"1.1", "2.3"')).status).toBe(200) // a list: any may match
  })

  it('a blob of another policy, or naming another model id, is refused (422), the session keeps its memory', async () => {
    const id = await session(2)
    const before = await blobOf(id)
    const etag = (await client.info(id)).data.etag
    const fullSession = await session(2, { name: 'full' })
    const p = await client.importMemory(id, await blobOf(fullSession), etag)
    expect(p.status).toBe(422)
    expect(p.data.code).toBe('policy_mismatch')
    expect(p.data.detail).toMatch(/policy \{"name":"full","params":\{\}\}, this session runs \{"name":"window"/)
    const otherParams = await session(2, { name: 'window', params: { sinkTokens: 2, recentTokens: 31 } })
    expect((await client.importMemory(id, await blobOf(otherParams), etag)).data.code).toBe('policy_mismatch')
    // Same weights (sha256) under another model id.
    const mem = decodeMemory(await unsigned(id)).memory
    const renamed = encodeMemory({ ...mem, model: { id: 'tiny-gqa-renamed', sha256: manifest.sha256 } }, { policy: (await client.info(id)).data.policy, dtype: 'float32' })
    const m = await client.importMemory(id, await signFor(renamed), etag)
    expect(m.status).toBe(422)
    expect(m.data.code).toBe('model_mismatch')
    expect(m.data.detail).toBe("memory is for model 'tiny-gqa-renamed', this session runs 'tiny-gqa'")
    expect(await blobOf(id)).toEqual(before)
  })
})

/** The session's memory as an unsigned blob (the export without its tag and flag). */
async function unsigned(id: string): Promise<Uint8Array> {
  const { memory, policy } = decodeMemory(await blobOf(id), undefined, { hmacVerified: true })
  return encodeMemory(memory, { policy, dtype: 'float32' })
}
