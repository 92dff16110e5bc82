/**
 * Fuzz through the Worker and the Durable Object in workerd (the share of the fuzz suite that runs
 * end to end; the bulk runs in Node, test/fuzz/): mutated memory blobs, re-signed with the tenant's
 * key, imported with the session's ETag; mutated step requests. Every reply is < 500 with a
 * request id, every 4xx is problem+json without a stack, and after every refused input the
 * session's ETag is unchanged (its stored memory byte-identical, compared in full every 10 inputs
 * and at the end). The suite prints how many inputs reached each stage.
 */
import fc from 'fast-check'
import { exports } from 'cloudflare:workers'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import { HMAC_BYTES } from '../../memory/codec.ts'
import { api, DEV_KEY } from '../../sim/client.ts'
import { blobCase, MEMORY_STAGES, memoryStage, requestCase, REQUEST_STAGES, requestStage, stageTable, type MemoryStage, type RequestStage } from '../fuzz/mutations.ts'
import { keyOf } from './signing-tools.ts'

const IMPORTS = 1000
const STEPS = 1000
const BASE = 'http://stepkv.test'
const fetcher = (url: string, init?: RequestInit) => exports.default.fetch(new Request(url, init))
const client = api(fetcher)
const WINDOW = { name: 'window', params: { sinkTokens: 2, recentTokens: 30 } }

/** A session at seq 3, its export and ETag. */
async function session() {
  const id = (await client.createSession({ policy: WINDOW })).data.id as string
  for (let seq = 1; seq <= 3; seq++) expect((await client.step(id, seq, { text: `screen ${seq}: a form with a code` })).status).toBe(200)
  return { id, blob: (await client.exportMemory(id)).data as Uint8Array, etag: (await client.info(id)).data.etag as string }
}

/** Checks one reply's envelope; returns its problem code (undefined on 2xx). */
async function checkReply(res: Response): Promise<{ code?: string; detail?: string }> {
  expect(res.status, `status ${res.status}`).toBeLessThan(500)
  expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  if (res.status < 400) {
    await res.arrayBuffer()
    return {}
  }
  expect(res.headers.get('content-type')).toBe('application/problem+json')
  const text = await res.text()
  expect(text).not.toMatch(/\bat .*\.(ts|js):\d+/)
  const body = JSON.parse(text) as { code: string; status: number; detail: string }
  expect(body.status).toBe(res.status)
  expect(typeof body.detail).toBe('string')
  return { code: body.code, detail: body.detail }
}

function report<S extends string>(title: string, stages: readonly S[], stoppedAt: Map<S, number>, extra: Map<string, number>) {
  const rows = stageTable(stages, stoppedAt)
  console.info(`${title}\n` + rows.map((r) => `  ${r.stage.padEnd(11)} reached ${String(r.reached).padStart(5)}  stopped ${r.stopped}`).join('\n') + '\n  codes: ' + [...extra].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join('; '))
  return rows
}

describe('fuzz through the Worker and the Durable Object', () => {
  // One structured log line per step and import (observe.ts) would bury the stage report.
  beforeEach(() => void vi.spyOn(console, 'log').mockImplementation(() => {}))
  it(`${IMPORTS} mutated, re-signed memory imports: < 500, stored memory unchanged unless accepted`, async () => {
    let s = await session()
    const key = await keyOf('dev')
    const body = s.blob.subarray(0, s.blob.byteLength - HMAC_BYTES)
    const stoppedAt = new Map<MemoryStage, number>()
    const codes = new Map<string, number>()
    let inputs = 0
    await fc.assert(
      fc.asyncProperty(blobCase(body), fc.nat({ max: 19 }), async (c, roll) => {
        const tag = roll === 0 ? s.blob.subarray(s.blob.byteLength - HMAC_BYTES) : new Uint8Array(await crypto.subtle.sign('HMAC', key, c.body))
        const bytes = new Uint8Array(c.body.byteLength + HMAC_BYTES)
        bytes.set(c.body)
        bytes.set(tag, c.body.byteLength)
        const ifMatch = roll === 1 ? '"3.0"' : s.etag
        const res = await fetcher(`${BASE}/v1/sessions/${s.id}/memory`, { method: 'PUT', headers: { authorization: `Bearer ${DEV_KEY}`, 'content-type': 'application/x-stepkv-memory', 'if-match': ifMatch }, body: bytes })
        const { code, detail } = await checkReply(res)
        codes.set(code ?? String(res.status), (codes.get(code ?? String(res.status)) ?? 0) + 1)
        if (code !== 'precondition_failed') {
          const stage = memoryStage(code, detail)
          stoppedAt.set(stage, (stoppedAt.get(stage) ?? 0) + 1)
        }
        if (code === undefined) {
          s = { ...s, blob: (await client.exportMemory(s.id)).data, etag: (await client.info(s.id)).data.etag }
          return
        }
        expect((await client.info(s.id)).data.etag).toBe(s.etag)
        if (++inputs % 10 === 0) expect((await client.exportMemory(s.id)).data).toEqual(s.blob)
      }),
      { numRuns: IMPORTS, seed: 0xf022 },
    )
    expect((await client.exportMemory(s.id)).data).toEqual(s.blob)
    const rows = report(`memory import fuzz (workerd): ${IMPORTS} blobs`, MEMORY_STAGES, stoppedAt, codes)
    expect(rows[1].reached).toBeGreaterThan(0.8 * rows[0].reached) // re-signed: past the HMAC
    expect(stoppedAt.get('accepted') ?? 0).toBeGreaterThan(0)
    expect(stoppedAt.get('invariants') ?? 0).toBeGreaterThan(0)
  })

  it(`${STEPS} mutated step requests: < 500, stored memory unchanged after every refusal`, async () => {
    const s = await session()
    let etag = s.etag
    const stoppedAt = new Map<RequestStage, number>()
    const codes = new Map<string, number>()
    let inputs = 0
    await fc.assert(
      fc.asyncProperty(requestCase(4), async (c) => {
        const res = await fetcher(`${BASE}/v1/sessions/${s.id}/steps`, { method: 'POST', headers: { authorization: `Bearer ${DEV_KEY}`, 'content-type': c.contentType }, body: c.body })
        const { code } = await checkReply(res)
        stoppedAt.set(requestStage(code), (stoppedAt.get(requestStage(code)) ?? 0) + 1)
        codes.set(code ?? String(res.status), (codes.get(code ?? String(res.status)) ?? 0) + 1)
        if (code === undefined) {
          // A valid step ran: put the session back at seq 3 (a conditional import of its export).
          const back = await client.importMemory(s.id, s.blob, (await client.info(s.id)).data.etag)
          expect(back.status).toBe(200)
          etag = back.data.etag
          return
        }
        expect((await client.info(s.id)).data.etag).toBe(etag)
        if (++inputs % 10 === 0) expect((await client.exportMemory(s.id)).data).toEqual(s.blob)
      }),
      { numRuns: STEPS, seed: 0xf023 },
    )
    expect((await client.exportMemory(s.id)).data).toEqual(s.blob)
    report(`step request fuzz (workerd): ${STEPS} requests`, REQUEST_STAGES, stoppedAt, codes)
    for (const stage of REQUEST_STAGES) expect(stoppedAt.get(stage) ?? 0, stage).toBeGreaterThan(0)
  })
})
