/**
 * Per-tenant limits through the app in workerd: each request runs `app.fetch` with the test
 * environment plus a `TENANT_LIMITS` entry for a tenant of this file, so limits can be tight here
 * without touching the other suites. Over a limit: 413/429 problem+json, Retry-After where waiting
 * helps, and nothing stored.
 */
import { createExecutionContext, env } from 'cloudflare:test'
import { describe, expect, it } from 'vitest'
import { app } from '../../worker/app.ts'
import type { TenantLimits } from '../../worker/limits.ts'
import { api } from '../../sim/client.ts'

const KEY = 'limits-test-key-0000000000000000'

/** A client of a fresh tenant whose limits are `limits()` at each request (they may change). */
function tenantClient(limits: () => Partial<TenantLimits>) {
  const tenant = `limited-${crypto.randomUUID()}`
  const fetcher = async (url: string, init?: RequestInit): Promise<Response> =>
    app.fetch(new Request(url, init), { ...env, API_KEYS: JSON.stringify({ [KEY]: tenant }), TENANT_LIMITS: JSON.stringify({ [tenant]: limits() }) }, createExecutionContext())
  return { fetcher, client: api(fetcher, 'http://stepkv.test', KEY) }
}

describe('per-tenant limits', () => {
  it('requests/s: the burst passes, then 429 rate_limited with Retry-After; other tenants are unaffected', async () => {
    const { fetcher } = tenantClient(() => ({ requestsPerSecond: 0.5, burstRequests: 3 }))
    const get = () => fetcher('http://stepkv.test/v1/models', { headers: { authorization: `Bearer ${KEY}` } })
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await get()).status)
    expect(statuses).toEqual([200, 200, 200])
    const res = await get()
    expect(res.status).toBe(429)
    expect(res.headers.get('retry-after')).toBe('2') // (1 − ~0 tokens) / 0.5 per s
    expect(res.headers.get('content-type')).toBe('application/problem+json')
    const body = (await res.json()) as Record<string, unknown>
    expect(body.code).toBe('rate_limited')
    expect(body.retryAfterSeconds).toBe(2)
    const { fetcher: other } = tenantClient(() => ({ requestsPerSecond: 0.5, burstRequests: 3 }))
    expect((await other('http://stepkv.test/v1/models', { headers: { authorization: `Bearer ${KEY}` } })).status).toBe(200)
  })

  it('body bytes: a step body over stepBodyBytes and an import over memoryBodyBytes → 413', async () => {
    const { client } = tenantClient(() => ({ stepBodyBytes: 1000, memoryBodyBytes: 500 }))
    const id = (await client.createSession()).data.id
    const big = await client.step(id, 1, { text: 'x'.repeat(1200) })
    expect(big.status).toBe(413)
    expect(big.data.code).toBe('payload_too_large')
    expect(big.data.limitBytes).toBe(1000)
    const etag = (await client.info(id)).data.etag
    const imp = await client.importMemory(id, new Uint8Array(600), etag)
    expect(imp.status).toBe(413)
    expect(imp.data.limitBytes).toBe(500)
    expect((await client.step(id, 1, { text: 'small' })).status).toBe(200)
  })

  it('tokens per step: a prefix over prefixTokensPerStep → 413 too_many_tokens, the seq is not used', async () => {
    const { client } = tenantClient(() => ({ prefixTokensPerStep: 8 }))
    const id = (await client.createSession()).data.id
    const r = await client.step(id, 1, { text: 'nine byte' }) // 9 UTF-8 bytes = 9 tokens
    expect(r.status).toBe(413)
    expect(r.data.code).toBe('too_many_tokens')
    expect(r.data.detail).toMatch(/9 tokens, the limit per step is 8/)
    const ok = await client.step(id, 1, { text: 'eight by' })
    expect(ok.status).toBe(200)
    expect(ok.data.memory.tokensPerLayer[0]).toBe(8)
  })

  it('sessions: the quota counts live sessions; a failed create or a delete frees the slot', async () => {
    const { client } = tenantClient(() => ({ sessions: 2 }))
    const a = (await client.createSession()).data.id
    expect((await client.createSession({ policy: { name: 'nope' } })).status).toBe(400) // does not count
    expect((await client.createSession()).status).toBe(201)
    const third = await client.createSession()
    expect(third.status).toBe(429)
    expect(third.data.code).toBe('session_limit')
    expect(third.data.sessions).toBe(2)
    expect(third.data.retryAfterSeconds).toBeUndefined()
    expect((await client.call('DELETE', `/v1/sessions/${a}`)).status).toBe(200)
    expect((await client.createSession()).status).toBe(201)
  })

  it('memory bytes per session: a step that would grow past it → 422 memory_limit, an import → 413; nothing stored', async () => {
    let limit = 64 << 20
    const { client } = tenantClient(() => ({ memoryBytesPerSession: limit }))
    const id = (await client.createSession({ policy: { name: 'full' } })).data.id
    const one = await client.step(id, 1, { text: 'first step' })
    expect(one.status).toBe(200)
    const bigger = (await client.createSession({ policy: { name: 'full' } })).data.id
    for (let seq = 1; seq <= 3; seq++) await client.step(bigger, seq, { text: `a longer memory ${seq}` })
    const blob = (await client.exportMemory(bigger)).data as Uint8Array
    limit = one.data.memory.bytes + 16
    const before = (await client.exportMemory(id)).data
    const r = await client.step(id, 2, { text: 'second step' })
    expect(r.status).toBe(422)
    expect(r.data.code).toBe('memory_limit')
    expect(r.data.limit).toBe(limit)
    expect(r.data.bytes).toBeGreaterThan(limit)
    const imp = await client.importMemory(id, blob, (await client.info(id)).data.etag)
    expect(imp.status).toBe(413)
    expect(imp.data.code).toBe('memory_limit')
    expect((await client.exportMemory(id)).data).toEqual(before)
    expect((await client.info(id)).data.seq).toBe(1)
  })
})
