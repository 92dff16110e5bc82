/**
 * @module A minimal stepkv HTTP client for simulations and tests over any fetch (workerd's `exports.default`,
 * or global fetch against `wrangler dev`). The real typed client comes with the SDK.
 */
import { pack, unpack } from 'msgpackr'

export const DEV_KEY = 'dev-key-stepkv-0000000000000000'
export const OTHER_KEY = 'dev-key-other-tenant-0000000000'

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>

export function api(fetcher: Fetch, base = 'http://stepkv.test', key = DEV_KEY) {
  const auth = { authorization: `Bearer ${key}` }
  const call = async (method: string, path: string, body?: unknown, msgpack = false) => {
    const headers: Record<string, string> = { ...auth }
    let payload: BodyInit | undefined
    if (body !== undefined) {
      headers['content-type'] = msgpack ? 'application/msgpack' : 'application/json'
      payload = msgpack ? (pack(body) as Uint8Array<ArrayBuffer>) : JSON.stringify(body)
    }
    if (msgpack) headers.accept = 'application/msgpack'
    const res = await fetcher(`${base}${path}`, { method, headers, body: payload })
    const type = res.headers.get('content-type') ?? ''
    const data = type.includes('msgpack')
      ? unpack(new Uint8Array(await res.arrayBuffer()))
      : type.includes('json')
        ? await res.json()
        : new Uint8Array(await res.arrayBuffer())
    return { status: res.status, type, data: data as any }
  }
  return {
    call,
    createSession: (body: unknown = {}) => call('POST', '/v1/sessions', body),
    step: (id: string, seq: number, observation: unknown, options?: unknown, msgpack = false) =>
      call('POST', `/v1/sessions/${id}/steps`, { seq, observation, ...(options ? { options } : {}) }, msgpack),
    info: (id: string) => call('GET', `/v1/sessions/${id}`),
    exportMemory: (id: string) => call('GET', `/v1/sessions/${id}/memory`),
    /** `ifMatch`: the session's ETag (`info(id)` → `etag`); the server refuses an import without it (428). */
    importMemory: async (id: string, blob: Uint8Array, ifMatch?: string) => {
      const res = await fetcher(`${base}/v1/sessions/${id}/memory`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/x-stepkv-memory', ...(ifMatch !== undefined && { 'if-match': ifMatch }) },
        body: blob as Uint8Array<ArrayBuffer>,
      })
      return { status: res.status, data: (await res.json()) as any }
    },
  }
}

/** Logits of a JSON step reply as a Float32Array `[S, vocab]`. */
export function logitsOf(reply: { logits: { dims: number[]; data: number[] | Uint8Array } }): Float32Array {
  const d = reply.logits.data
  // Copy first: msgpack bins decode as (possibly unaligned) Buffer views, and Buffer#slice is a view.
  return d instanceof Uint8Array ? new Float32Array(new Uint8Array(d).buffer) : Float32Array.from(d)
}

/** The tolerance measure of the issue: max|a − b| / max(1, max|b|). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity
  let num = 0
  let den = 1
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]))
    den = Math.max(den, Math.abs(b[i]))
  }
  return num / den
}
