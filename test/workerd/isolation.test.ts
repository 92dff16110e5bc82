/**
 * Tenant isolation and observability through the Worker and the Durable Objects: tenant B can
 * neither read, step, export, import nor delete tenant A's session (404, A's memory untouched);
 * every reply carries a request id; each step writes one structured log line; per-tenant counters
 * go to the Analytics Engine binding when there is one.
 */
import { createExecutionContext, env } from 'cloudflare:test'
import { exports } from 'cloudflare:workers'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { app } from '../../worker/app.ts'
import { api, DEV_KEY, OTHER_KEY } from '../../sim/client.ts'
import { importCurrent } from './signing-tools.ts'

const fetcher = (url: string, init?: RequestInit) => exports.default.fetch(new Request(url, init))
const a = api(fetcher)
const b = api(fetcher, 'http://stepkv.test', OTHER_KEY)
let idA = ''
let idB = ''

const memoryOf = async (client: typeof a, id: string) => (await client.exportMemory(id)).data as Uint8Array

beforeAll(async () => {
  idA = (await a.createSession({ policy: { name: 'full' } })).data.id
  idB = (await b.createSession({ policy: { name: 'full' } })).data.id
  for (let seq = 1; seq <= 2; seq++) {
    expect((await a.step(idA, seq, { text: `tenant A private ${seq}` })).status).toBe(200)
    expect((await b.step(idB, seq, { text: `tenant B ${seq}` })).status).toBe(200)
  }
})

afterEach(() => vi.restoreAllMocks())

describe('tenant isolation', () => {
  it("tenant B cannot read, step, export, import or delete tenant A's session", async () => {
    const before = await memoryOf(a, idA)
    const etagA = (await a.info(idA)).data.etag
    const blobB = await memoryOf(b, idB)
    const attempts = {
      read: await b.info(idA),
      step: await b.step(idA, 3, { text: 'B writes into A' }),
      replay: await b.step(idA, 2, { text: 'B asks for A\'s last reply' }),
      export: await b.exportMemory(idA),
      import: await b.importMemory(idA, blobB, etagA), // a blob validly signed for B
      delete: await b.call('DELETE', `/v1/sessions/${idA}`),
    }
    for (const [what, r] of Object.entries(attempts)) {
      expect(r.status, what).toBe(404)
      expect(r.data.code, what).toBe('unknown_session')
      expect(JSON.stringify(r.data), what).not.toMatch(/tenant A private/)
    }
    // A blob signed for A does not verify for B, whichever session B names.
    const blobA = await memoryOf(a, idA)
    expect((await b.importMemory(idA, blobA, etagA)).data.code).toBe('memory_signature')
    expect((await importCurrent(b, idB, blobA)).data.code).toBe('memory_signature')
    // A's session is exactly as it was, and continues.
    expect(await memoryOf(a, idA)).toEqual(before)
    expect((await a.info(idA)).data.etag).toBe(etagA)
    expect((await a.step(idA, 3, { text: 'tenant A private 3' })).status).toBe(200)
  })

  it("and the other way round: A cannot reach B's session", async () => {
    const before = await memoryOf(b, idB)
    for (const r of [await a.info(idB), await a.step(idB, 3, { text: 'x' }), await a.exportMemory(idB), await a.call('DELETE', `/v1/sessions/${idB}`)])
      expect(r.status).toBe(404)
    expect(await memoryOf(b, idB)).toEqual(before)
  })
})

describe('request ids, step logs, per-tenant counters', () => {
  it('every reply carries x-request-id; a well-formed client id is echoed (and in the problem body), a malformed one replaced', async () => {
    const replies = [
      await fetcher('http://stepkv.test/healthz'),
      await fetcher('http://stepkv.test/v1/models'), // 401
      await fetcher('http://stepkv.test/v1/nope', { headers: { authorization: `Bearer ${DEV_KEY}` } }), // 404 no_route
      await fetcher(`http://stepkv.test/v1/sessions/${idB}`, { headers: { authorization: `Bearer ${DEV_KEY}` } }), // 404
      await fetcher(`http://stepkv.test/v1/sessions/${idA}`, { headers: { authorization: `Bearer ${DEV_KEY}` } }), // 200
    ]
    expect(replies.map((r) => r.status)).toEqual([200, 401, 404, 404, 200])
    for (const r of replies) expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    const mine = await fetcher('http://stepkv.test/v1/models', { headers: { 'x-request-id': 'robot-7.tick:0042' } })
    expect(mine.headers.get('x-request-id')).toBe('robot-7.tick:0042')
    expect(((await mine.json()) as { requestId: string }).requestId).toBe('robot-7.tick:0042')
    for (const bad of ['has space', 'x'.repeat(65), '"quoted"']) {
      const r = await fetcher('http://stepkv.test/healthz', { headers: { 'x-request-id': bad } })
      expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    }
  })

  it('each step writes one JSON log line: request id, session, seq, policy, tokens, bytes, timings, outcome', async () => {
    const lines: Record<string, any>[] = []
    vi.spyOn(console, 'log').mockImplementation((text: unknown) => {
      if (typeof text === 'string' && text.startsWith('{')) lines.push(JSON.parse(text))
    })
    const id = (await a.createSession({ policy: { name: 'window', params: { sinkTokens: 2, recentTokens: 30 } } })).data.id
    const ok = await fetcher(`http://stepkv.test/v1/sessions/${id}/steps`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEV_KEY}`, 'content-type': 'application/json', 'x-request-id': 'req-ok' },
      body: JSON.stringify({ seq: 1, observation: { text: 'twelve bytes' } }),
    })
    expect(ok.status).toBe(200)
    const reply = (await ok.json()) as { memory: { bytes: number } }
    await fetcher(`http://stepkv.test/v1/sessions/${id}/steps`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEV_KEY}`, 'content-type': 'application/json', 'x-request-id': 'req-conflict' },
      body: JSON.stringify({ seq: 5, observation: { text: 'x' } }),
    })
    const steps = lines.filter((l) => l.event === 'step')
    expect(steps.map((l) => [l.requestId, l.outcome, l.status])).toEqual([['req-ok', 'ok', 200], ['req-conflict', 'seq_conflict', 409]])
    expect(steps[0]).toMatchObject({ level: 'info', tenant: 'dev', session: id, seq: 1, model: 'tiny-gqa', policy: 'window', prefixTokens: 12, memoryTokens: 12, memoryBytes: reply.memory.bytes })
    expect(Object.keys(steps[0].timings).sort()).toEqual(['decodeMs', 'encodeMs', 'loadMs', 'persistMs', 'policyMs', 'prefillMs'])
    expect(steps[0].totalMs).toBeGreaterThan(0)
    expect(steps[1]).toMatchObject({ session: id, seq: 5 })
  })

  it('METRICS is declared in wrangler.toml (a local dataset here) and requests through it succeed', async () => {
    expect(typeof env.METRICS?.writeDataPoint).toBe('function')
    const r = await a.info(idA) // exports.default: the Worker with the configured binding
    expect(r.status).toBe(200)
  })

  it('per-tenant counters: one Analytics Engine data point per authenticated request (tenant, route, outcome, tokens, bytes)', async () => {
    const points: AnalyticsEngineDataPoint[] = []
    const metrics = { writeDataPoint: (p: AnalyticsEngineDataPoint) => void points.push(p) } as AnalyticsEngineDataset
    const withMetrics = async (url: string, init?: RequestInit) => app.fetch(new Request(url, init), { ...env, METRICS: metrics }, createExecutionContext())
    const dev = api(withMetrics)
    const other = api(withMetrics, 'http://stepkv.test', OTHER_KEY)
    const id = (await dev.createSession()).data.id
    const step = await dev.step(id, 1, { text: 'seven b' })
    await other.info(id)
    await withMetrics('http://stepkv.test/v1/models') // 401: no tenant, no data point
    expect(points.map((p) => [p.indexes, p.blobs])).toEqual([
      [['dev'], ['dev', 'POST /v1/sessions', 'ok']],
      [['dev'], ['dev', 'POST /v1/sessions/:id/steps', 'ok']],
      [['other'], ['other', 'GET /v1/sessions/:id', 'unknown_session']],
    ])
    const [count, status, latencyMs, requestBytes, prefixTokens, memoryBytes] = points[1].doubles!
    expect([count, status, prefixTokens, memoryBytes]).toEqual([1, 200, 7, step.data.memory.bytes])
    expect(latencyMs).toBeGreaterThan(0)
    expect(requestBytes).toBe(0) // the client sends no Content-Length over this in-process fetch
    expect(points[2].doubles!.slice(0, 2)).toEqual([1, 404])
  })
})
