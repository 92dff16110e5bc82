/**
 * Fail closed on the isolate memory budget, through the Worker and the Durable Object: a step that
 * would need more than `ISOLATE_MEMORY_BUDGET_BYTES` answers 422 `isolate_memory_budget` before
 * inference, every time it is retried (no reset, no crash loop), and stores nothing; a stored
 * memory too large to decode is refused before it is read, while export and reset still work. The
 * budget is the Durable Object's own variable, lowered here on the live object (`runInDurableObject`)
 * and restored after.
 */
import { env, evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { exports } from 'cloudflare:workers'
import { afterEach, describe, expect, it } from 'vitest'
import { api } from '../../sim/client.ts'
import type { SessionObject } from '../../worker/session-object.ts'
import { SessionStore } from '../../worker/storage.ts'

const client = api((url, init) => exports.default.fetch(new Request(url, init)))
const stubOf = (id: string) => env.SESSIONS.get(env.SESSIONS.idFromName(`dev/${id}`))
const text = 'a forty-byte observation for the budget.' // 40 tokens (bytes) on tiny-gqa

/** Sets the object's ISOLATE_MEMORY_BUDGET_BYTES (undefined: the configured one). */
let restore: (() => Promise<void>) | undefined
async function setBudget(id: string, bytes: string | undefined) {
  const previous = await runInDurableObject(stubOf(id), (o: SessionObject) => {
    const objectEnv = (o as unknown as { env: Record<string, string | undefined> }).env
    const was = objectEnv.ISOLATE_MEMORY_BUDGET_BYTES
    objectEnv.ISOLATE_MEMORY_BUDGET_BYTES = bytes
    return was
  })
  restore ??= () => setBudget(id, previous).then(() => undefined)
}
afterEach(async () => {
  await restore?.()
  restore = undefined
})

describe('isolate memory budget', () => {
  it('is configured in wrangler.toml (96 MiB)', () => {
    expect(env.ISOLATE_MEMORY_BUDGET_BYTES).toBe('100663296')
  })

  it('a step over the budget → 422 isolate_memory_budget, again on retry; nothing stored; the session goes on', async () => {
    const id = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    for (let seq = 1; seq <= 2; seq++) expect((await client.step(id, seq, { text })).status).toBe(200)
    const before = (await client.exportMemory(id)).data
    const etag = (await client.info(id)).data.etag
    // Step 3 holds 2 × 80 + 4 × 120 tokens × 1,024 B = 655,360 B (test/worker/isolate-budget.test.ts).
    await setBudget(id, '500000')
    for (let attempt = 0; attempt < 3; attempt++) {
      const r = await client.step(id, 3, { text })
      expect(r.status).toBe(422)
      expect(r.type).toBe('application/problem+json')
      expect(r.data).toMatchObject({ code: 'isolate_memory_budget', needBytes: 655_360, budgetBytes: 500_000 })
      expect(r.data.detail).toMatch(/step 3 \(80 memory tokens \+ 40 prefix tokens\).*reset the session/)
      expect(JSON.stringify(r.data)).not.toMatch(/\.ts:\d+/)
    }
    expect((await client.exportMemory(id)).data).toEqual(before)
    const info = await client.info(id)
    expect(info.status).toBe(200)
    expect(info.data.etag).toBe(etag)
    expect(info.data.seq).toBe(2)
    // Under a budget it fits in, the same step runs.
    await setBudget(id, '700000')
    const r = await client.step(id, 3, { text })
    expect(r.status).toBe(200)
    expect(r.data.memory.tokensPerLayer).toEqual([120, 120, 120, 120])
  })

  it('a stored memory too large to decode is refused before it is read; export and reset still work', async () => {
    const id = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    for (let seq = 1; seq <= 2; seq++) expect((await client.step(id, seq, { text })).status).toBe(200)
    const stored = await runInDurableObject(stubOf(id), (_o, state) => new SessionStore(state.storage).memoryBytes())
    expect(stored).toBeGreaterThan(80 * 1024) // 80 tokens × 1,024 B of float32 K/V + header
    await evictDurableObject(stubOf(id)) // no hot memory: the next request must decode the stored blob
    await setBudget(id, String(2 * stored - 1)) // float32: the blob and its decoded copy
    const r = await client.step(id, 3, { text })
    expect(r.status).toBe(422)
    expect(r.data).toMatchObject({ code: 'isolate_memory_budget', needBytes: 2 * stored, budgetBytes: 2 * stored - 1 })
    expect(r.data.detail).toMatch(new RegExp(`decoding the session's stored memory \\(${stored} bytes, float32\\)`))
    expect((await client.info(id)).data.code).toBe('isolate_memory_budget')
    const exported = await client.exportMemory(id)
    expect(exported.status).toBe(200)
    expect((exported.data as Uint8Array).length).toBe(stored + 32) // + the HMAC tag
    const reset = await client.call('POST', `/v1/sessions/${id}/reset`, {})
    expect(reset.status).toBe(200)
    expect(reset.data.seq).toBe(0)
    expect((await client.step(id, 1, { text })).status).toBe(200)
  })
})
