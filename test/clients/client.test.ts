/**
 * The TypeScript client over a scripted fetch: wire formats, retries (a step resent with the same
 * seq and request id; a create never resent after a timeout), timeouts, Retry-After, and problem
 * replies as typed exceptions.
 */
import { pack, unpack } from 'msgpackr'
import { describe, expect, it } from 'vitest'
import {
  Conflict,
  InvalidRequest,
  NotFound,
  PreconditionFailed,
  RateLimited,
  ServerError,
  StepkvClient,
  StepkvNetworkError,
  StepkvTimeout,
  logitsOf,
  type StepReply,
} from '../../clients/ts/index.ts'

interface Seen {
  url: string
  method: string
  headers: Record<string, string>
  body?: Uint8Array | string
}

type Script = (seen: Seen, attempt: number, signal?: AbortSignal) => Promise<Response> | Response

/** A fetch that records each request and answers from `script`. */
function scripted(script: Script) {
  const seen: Seen[] = []
  const fetch = async (url: string, init?: RequestInit) => {
    const headers = Object.fromEntries(Object.entries((init?.headers ?? {}) as Record<string, string>))
    const body = init?.body instanceof Uint8Array ? init.body : (init?.body as string | undefined)
    const s = { url, method: init?.method ?? 'GET', headers, body }
    seen.push(s)
    return script(s, seen.length - 1, init?.signal ?? undefined)
  }
  return { seen, fetch }
}

const problem = (status: number, code: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ type: `https://stepkv.dev/problems/${code}`, title: 'x', status, code, detail: `${code} detail`, requestId: 'r1', ...extra }), {
    status,
    headers: { 'content-type': 'application/problem+json', ...headers },
  })
const msgpackReply = (value: unknown, status = 200) => new Response(pack(value) as Uint8Array<ArrayBuffer>, { status, headers: { 'content-type': 'application/msgpack' } })

const reply: StepReply = {
  seq: 3,
  action: { type: 'token', token: 104, text: 'h', logit: 1.5 },
  memory: { tokensPerLayer: [10, 10], bytes: 100, nextPosition: 10, durableSeq: 3, etag: '"3.3"' },
  timings: { loadMs: 0, encodeMs: 0, prefillMs: 1, decodeMs: 0, policyMs: 0, persistMs: 0 },
  backend: 'wasm',
}

const options = { baseUrl: 'http://kv.test/', apiKey: 'k'.repeat(32), retryDelayMs: 1 }

describe('StepkvClient', () => {
  it('sends msgpack (images as bin) with the bearer key and Accept; decodes the msgpack reply', async () => {
    const { seen, fetch } = scripted(() => msgpackReply(reply))
    const kv = new StepkvClient({ ...options, fetch })
    const image = new Uint8Array([137, 80, 78, 71])
    expect(await kv.step('s_1', 3, { image, instruction: 'click OK' })).toEqual(reply)
    expect(seen[0].url).toBe('http://kv.test/v1/sessions/s_1/steps')
    expect(seen[0].headers).toMatchObject({ authorization: `Bearer ${'k'.repeat(32)}`, 'content-type': 'application/msgpack' })
    expect(seen[0].headers.accept).toContain('application/msgpack')
    const body = unpack(seen[0].body as Uint8Array)
    expect(body.seq).toBe(3)
    expect(new Uint8Array(body.observation.image)).toEqual(image)
  })

  it('JSON mode sends bytes as base64 strings', async () => {
    const { seen, fetch } = scripted(() => new Response(JSON.stringify(reply), { headers: { 'content-type': 'application/json' } }))
    const kv = new StepkvClient({ ...options, fetch, format: 'json' })
    await kv.step('s_1', 1, { image: new Uint8Array([1, 2, 3]), instruction: 'x' })
    expect(JSON.parse(seen[0].body as string).observation.image).toBe('AQID')
  })

  it('a step that timed out or lost its connection is resent with the same seq and request id', async () => {
    const { seen, fetch } = scripted((_s, attempt, signal) => {
      if (attempt === 0) return new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason)))
      if (attempt === 1) throw new TypeError('fetch failed')
      return msgpackReply(reply)
    })
    const kv = new StepkvClient({ ...options, fetch, timeoutMs: 50 })
    expect(await kv.step('s_1', 3, { text: 'hi' })).toEqual(reply)
    expect(seen).toHaveLength(3)
    expect(seen.map((s) => unpack(s.body as Uint8Array).seq)).toEqual([3, 3, 3])
    expect(new Set(seen.map((s) => s.headers['x-request-id'])).size).toBe(1)
  })

  it('gives up after `retries` with the transport error', async () => {
    const { seen, fetch } = scripted(() => {
      throw new TypeError('connect ECONNREFUSED')
    })
    const kv = new StepkvClient({ ...options, fetch, retries: 2 })
    await expect(kv.step('s_1', 1, { text: 'x' })).rejects.toBeInstanceOf(StepkvNetworkError)
    expect(seen).toHaveLength(3)
  })

  it('never resends a create after a timeout (it may have created the session), but does after a 429', async () => {
    const hang = scripted((_s, _a, signal) => new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason))))
    await expect(new StepkvClient({ ...options, fetch: hang.fetch, timeoutMs: 30 }).createSession()).rejects.toBeInstanceOf(StepkvTimeout)
    expect(hang.seen).toHaveLength(1)
    const limited = scripted((_s, attempt) => (attempt === 0 ? problem(429, 'rate_limited', {}, { 'retry-after': '0' }) : msgpackReply({ id: 's_2' }, 201)))
    expect(await new StepkvClient({ ...options, fetch: limited.fetch }).createSession()).toEqual({ id: 's_2' })
    expect(limited.seen).toHaveLength(2)
  })

  it('a Retry-After longer than maxRetryDelayMs is not waited for: RateLimited with retryAfterSeconds', async () => {
    const { seen, fetch } = scripted(() => problem(429, 'rate_limited', {}, { 'retry-after': '30' }))
    const e = await new StepkvClient({ ...options, fetch }).info('s_1').catch((e) => e)
    expect(e).toBeInstanceOf(RateLimited)
    expect(e.retryAfterSeconds).toBe(30)
    expect(seen).toHaveLength(1)
  })

  it('problems become typed exceptions with code, status, requestId and extension members; 4xx are not retried', async () => {
    const cases: [Response, Function, Record<string, unknown>][] = [
      [problem(409, 'seq_conflict', { lastSeq: 4, expectedSeq: 5 }), Conflict, { code: 'seq_conflict', lastSeq: 4 }],
      [problem(412, 'precondition_failed', { etag: '"4.5"', seq: 4 }), PreconditionFailed, { etag: '"4.5"' }],
      [problem(400, 'invalid_request', { errors: [{ path: 'seq', message: 'bad' }] }), InvalidRequest, { errors: [{ path: 'seq', message: 'bad' }] }],
      [problem(404, 'unknown_session'), NotFound, { status: 404, requestId: 'r1' }],
    ]
    for (const [res, Class, fields] of cases) {
      const { seen, fetch } = scripted(() => res.clone())
      const e = await new StepkvClient({ ...options, fetch }).step('s_1', 5, { text: 'x' }).catch((e) => e)
      expect(e).toBeInstanceOf(Class)
      expect(e).toMatchObject(fields)
      expect(e.message).toContain(`${fields.code ?? ''}`)
      expect(seen).toHaveLength(1)
    }
  })

  it('a 5xx step is retried; a reply that is not problem+json still becomes a typed error', async () => {
    const { seen, fetch } = scripted(() => new Response('<html>bad gateway</html>', { status: 502, headers: { 'content-type': 'text/html' } }))
    const e = await new StepkvClient({ ...options, fetch, retries: 1 }).step('s_1', 1, { text: 'x' }).catch((e) => e)
    expect(e).toBeInstanceOf(ServerError)
    expect(e.code).toBe('http_502')
    expect(seen).toHaveLength(2)
  })

  it('Session numbers its steps and keeps seq on a failed step', async () => {
    let n = 0
    const { seen, fetch } = scripted((s) => {
      if (s.url.endsWith('/v1/sessions')) return msgpackReply({ id: 's_9', seq: 0, etag: '"0.0"' }, 201)
      const seq = unpack(s.body as Uint8Array).seq
      if (n++ === 1) return problem(400, 'invalid_observation')
      return msgpackReply({ ...reply, seq, memory: { ...reply.memory, etag: `"${seq}.${seq}"` } })
    })
    const s = await new StepkvClient({ ...options, fetch }).open()
    expect((await s.step({ text: 'a' })).seq).toBe(1)
    await expect(s.step({ text: 'b' })).rejects.toBeInstanceOf(InvalidRequest)
    expect((await s.step({ text: 'c' })).seq).toBe(2)
    expect(s.etag).toBe('"2.2"')
    expect(seen.slice(1).map((x) => unpack(x.body as Uint8Array).seq)).toEqual([1, 2, 2])
  })

  it('logitsOf reads JSON numbers and msgpack float32 bytes alike', () => {
    const f = new Float32Array([0.5, -1, 2])
    const viaBytes = { ...reply, logits: { dtype: 'float32' as const, dims: [1, 3], data: new Uint8Array(f.buffer) as unknown as number[] } }
    const viaJson = { ...reply, logits: { dtype: 'float32' as const, dims: [1, 3], data: [0.5, -1, 2] } }
    expect([...logitsOf(viaBytes)!]).toEqual([0.5, -1, 2])
    expect([...logitsOf(viaJson)!]).toEqual([0.5, -1, 2])
  })
})
