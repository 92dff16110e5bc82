/**
 * @module `StepkvClient`: a typed client of the stepkv HTTP API over any `fetch` (Node ≥ 18,
 * browsers, Workers). Bodies and replies are msgpack (default; images travel as bin) or JSON; each
 * attempt has a timeout; retryable failures are retried with backoff — a step is retried with the
 * **same seq**, which the server answers with the stored reply if the first attempt already ran
 * (README, seq rules). Problem replies throw typed exceptions (`errors.ts`).
 */
import { pack, unpack } from 'msgpackr'
import { problemError, StepkvNetworkError, StepkvProblem, StepkvTimeout, type Problem } from './errors.ts'
import { SocketSession } from './socket.ts'
import type {
  CreateSessionRequest,
  ModelList,
  Observation,
  PolicySpec,
  SessionInfo,
  SnapshotInfo,
  SnapshotList,
  StepOptions,
  StepReply,
} from './types.ts'

export const MSGPACK = 'application/msgpack'
export const MEMORY_TYPE = 'application/x-stepkv-memory'

export interface ClientOptions {
  /** Where the Worker is, e.g. `http://127.0.0.1:8787` (no trailing path). */
  baseUrl: string
  /** API key (`Authorization: Bearer`). */
  apiKey: string
  /** Wire format of bodies and replies; default `'msgpack'`. */
  format?: 'msgpack' | 'json'
  /** Per-attempt timeout (ms); default 30,000. */
  timeoutMs?: number
  /** Extra attempts after a retryable failure; default 2. */
  retries?: number
  /** First backoff (ms), doubled per attempt; default 100. */
  retryDelayMs?: number
  /** Longest wait before a retry (ms), also for a 429's Retry-After; default 5,000. A longer
   * Retry-After is not waited for: the `RateLimited` error is thrown. */
  maxRetryDelayMs?: number
  /** The fetch to use; default the global one. */
  fetch?: (input: string, init?: RequestInit) => Promise<Response>
}

/**
 * How a call may be retried.
 * - `idempotent`: timeouts, connection failures, 429, 500/502/503/504 (a step: the same seq is
 *   replayed by the server; GET, DELETE, lifecycle calls guarded by If-Match).
 * - `refused`: only failures where the server did nothing: 429 `rate_limited` (session create, fork,
 *   snapshot: a timed-out create might have created the session, so it is not resent).
 */
export type RetryMode = 'idempotent' | 'refused' | 'never'

interface Call {
  method: string
  path: string
  body?: unknown
  /** A raw body with its content type (memory import). */
  raw?: { bytes: Uint8Array; type: string }
  headers?: Record<string, string>
  retry: RetryMode
  /** Read the reply as bytes (memory export). */
  binary?: boolean
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504])

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function randomRequestId(): string {
  return `c-${crypto.randomUUID()}`
}

/** Logits of a step reply as Float32Array `[S × vocab]` (JSON numbers or msgpack float32 bytes). */
export function logitsOf(reply: StepReply): Float32Array | undefined {
  const data = reply.logits?.data as unknown
  if (data === undefined) return undefined
  if (data instanceof Uint8Array) return new Float32Array(new Uint8Array(data).buffer) // copy: bins may be unaligned views
  return Float32Array.from(data as number[])
}

/**
 * The stepkv API. Every method throws a `StepkvProblem` subclass for a problem reply,
 * `StepkvTimeout` or `StepkvNetworkError` when no reply came after the retries.
 * @example
 * ```ts
 * const kv = new StepkvClient({ baseUrl: 'http://127.0.0.1:8787', apiKey: 'dev-key-stepkv-0000000000000000' })
 * const s = await kv.open({ model: 'tiny-gqa', policy: { name: 'window', params: { recentTokens: 64 } } })
 * const reply = await s.step({ text: 'hello' })
 * ```
 */
export class StepkvClient {
  readonly options: Required<Omit<ClientOptions, 'fetch'>> & Pick<ClientOptions, 'fetch'>

  constructor(options: ClientOptions) {
    if (!/^https?:\/\//.test(options.baseUrl)) throw new TypeError(`baseUrl must be an http(s) URL, got '${options.baseUrl}'`)
    this.options = {
      format: 'msgpack',
      timeoutMs: 30_000,
      retries: 2,
      retryDelayMs: 100,
      maxRetryDelayMs: 5_000,
      ...options,
      baseUrl: options.baseUrl.replace(/\/+$/, ''),
    }
  }

  /** `GET /v1/models`. */
  models(): Promise<ModelList> {
    return this.call({ method: 'GET', path: '/v1/models', retry: 'idempotent' })
  }

  /** `POST /v1/sessions` → 201 session info. Retried only when refused (429). */
  createSession(request: CreateSessionRequest = {}): Promise<SessionInfo> {
    return this.call({ method: 'POST', path: '/v1/sessions', body: request, retry: 'refused' })
  }

  /** Creates a session and returns a `Session` that numbers its steps. */
  async open(request: CreateSessionRequest = {}): Promise<Session> {
    return new Session(this, await this.createSession(request))
  }

  /** A `Session` handle for an existing session id (reads its info, so its seq continues). */
  async attach(id: string): Promise<Session> {
    return new Session(this, await this.info(id))
  }

  /** `GET /v1/sessions/:id`. */
  info(id: string): Promise<SessionInfo> {
    return this.call({ method: 'GET', path: `/v1/sessions/${id}`, retry: 'idempotent' })
  }

  /**
   * `POST /v1/sessions/:id/steps`: runs step `seq` (the first is 1). Retried with the same seq.
   * @throws Conflict (`seq_conflict`) when seq is neither the next one nor the last one (replayed)
   */
  step(id: string, seq: number, observation: Observation, options?: StepOptions): Promise<StepReply> {
    return this.call({
      method: 'POST',
      path: `/v1/sessions/${id}/steps`,
      body: { seq, observation, ...(options && { options }) },
      retry: 'idempotent',
    })
  }

  /** Opens the session's WebSocket (`SocketSession`, Node only: the upgrade carries the key as a
   * header); its steps continue after `seq` (the session's last successful step). */
  connect(id: string, seq: number): Promise<SocketSession> {
    return SocketSession.connect(this, id, seq)
  }

  /** `GET /v1/sessions/:id/memory`: the signed blob and the ETag of the state it is. */
  async exportMemory(id: string): Promise<{ blob: Uint8Array; etag: string }> {
    return this.call({ method: 'GET', path: `/v1/sessions/${id}/memory`, retry: 'idempotent', binary: true })
  }

  /** `PUT /v1/sessions/:id/memory` with `If-Match: etag` (the session's current ETag). */
  importMemory(id: string, blob: Uint8Array, etag: string): Promise<SessionInfo> {
    return this.call({
      method: 'PUT',
      path: `/v1/sessions/${id}/memory`,
      raw: { bytes: blob, type: MEMORY_TYPE },
      headers: { 'if-match': etag },
      retry: 'refused',
    })
  }

  /** `DELETE /v1/sessions/:id`. */
  deleteSession(id: string): Promise<{ deleted: true }> {
    return this.call({ method: 'DELETE', path: `/v1/sessions/${id}`, retry: 'refused' })
  }

  /** `POST /v1/sessions/:id/reset`: a new episode (seq 0, empty memory), same configuration.
   * @param etag optional If-Match: refuse (412) if the session moved on */
  reset(id: string, etag?: string): Promise<SessionInfo> {
    return this.call({ method: 'POST', path: `/v1/sessions/${id}/reset`, body: {}, headers: ifMatch(etag), retry: etag ? 'idempotent' : 'refused' })
  }

  /** `POST /v1/sessions/:id/snapshots`: keep the current state under `name` (default `seq-<seq>.<generation>`). */
  snapshot(id: string, name?: string): Promise<SnapshotInfo> {
    return this.call({ method: 'POST', path: `/v1/sessions/${id}/snapshots`, body: name ? { name } : {}, retry: 'refused' })
  }

  /** `GET /v1/sessions/:id/snapshots`. */
  snapshots(id: string): Promise<SnapshotList> {
    return this.call({ method: 'GET', path: `/v1/sessions/${id}/snapshots`, retry: 'idempotent' })
  }

  /** `DELETE /v1/sessions/:id/snapshots/:name`. */
  deleteSnapshot(id: string, name: string): Promise<{ deleted: true }> {
    return this.call({ method: 'DELETE', path: `/v1/sessions/${id}/snapshots/${encodeURIComponent(name)}`, retry: 'refused' })
  }

  /** `POST /v1/sessions/:id/rollback`: back to a snapshot (memory, seq, policy). */
  rollback(id: string, snapshot: string, etag?: string): Promise<SessionInfo> {
    return this.call({ method: 'POST', path: `/v1/sessions/${id}/rollback`, body: { snapshot }, headers: ifMatch(etag), retry: etag ? 'idempotent' : 'refused' })
  }

  /** `POST /v1/sessions/:id/fork` → 201 a new session with the same configuration and memory. */
  fork(id: string, snapshot?: string): Promise<SessionInfo> {
    return this.call({ method: 'POST', path: `/v1/sessions/${id}/fork`, body: snapshot ? { snapshot } : {}, retry: 'refused' })
  }

  /** `PATCH /v1/sessions/:id`: change the policy or its budget where the memory allows it
   * (409 `policy_incompatible` otherwise). */
  reconfigure(id: string, policy: PolicySpec, etag?: string): Promise<SessionInfo> {
    return this.call({
      method: 'PATCH',
      path: `/v1/sessions/${id}`,
      body: { policy: { name: policy.name, params: policy.params ?? {} } },
      headers: ifMatch(etag),
      retry: etag ? 'idempotent' : 'refused',
    })
  }

  /** Sends one call with retries (see `RetryMode`). */
  private async call<T>(c: Call): Promise<T> {
    const { retries, retryDelayMs, maxRetryDelayMs } = this.options
    const requestId = randomRequestId()
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.attempt(c, requestId)) as T
      } catch (e) {
        const backoff = retryDelayMs * 2 ** attempt
        const wait = attempt < retries ? retryWait(e, c.retry, backoff) : undefined
        if (wait === undefined || wait > maxRetryDelayMs) throw e
        await sleep(wait)
      }
    }
  }

  private async attempt(c: Call, requestId: string): Promise<unknown> {
    const { format, timeoutMs, apiKey, baseUrl } = this.options
    const headers: Record<string, string> = { authorization: `Bearer ${apiKey}`, 'x-request-id': requestId, ...c.headers }
    let body: BodyInit | undefined
    if (c.raw) {
      headers['content-type'] = c.raw.type
      body = c.raw.bytes as Uint8Array<ArrayBuffer>
    } else if (c.body !== undefined) {
      headers['content-type'] = format === 'msgpack' ? MSGPACK : 'application/json'
      body = format === 'msgpack' ? (pack(c.body) as Uint8Array<ArrayBuffer>) : JSON.stringify(c.body, jsonBytes)
    }
    if (format === 'msgpack') headers.accept = `${MSGPACK}, application/json;q=0.5`
    const what = `${c.method} ${c.path}`
    const fetcher = this.options.fetch ?? fetch
    let res: Response
    try {
      res = await fetcher(`${baseUrl}${c.path}`, { method: c.method, headers, body, signal: AbortSignal.timeout(timeoutMs) })
    } catch (e) {
      if ((e as Error)?.name === 'TimeoutError' || (e as Error)?.name === 'AbortError') throw new StepkvTimeout(timeoutMs, what)
      throw new StepkvNetworkError(what, e)
    }
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(await res.arrayBuffer())
    } catch (e) {
      if ((e as Error)?.name === 'TimeoutError' || (e as Error)?.name === 'AbortError') throw new StepkvTimeout(timeoutMs, what)
      throw new StepkvNetworkError(what, e)
    }
    const type = (res.headers.get('content-type') ?? '').split(';')[0].trim()
    if (!res.ok) throw problemError(asProblem(res.status, type, bytes), res.headers.get('retry-after'))
    if (c.binary) return { blob: bytes, etag: res.headers.get('etag') ?? '' }
    if (type === MSGPACK) return unpack(bytes)
    return JSON.parse(new TextDecoder().decode(bytes))
  }
}

/** The wait (ms) before retrying after `e`, or undefined when `e` is not retried under `mode`. */
export function retryWait(e: unknown, mode: RetryMode, backoffMs: number): number | undefined {
  if (mode === 'never') return undefined
  if (e instanceof StepkvProblem) {
    if (!RETRY_STATUS.has(e.status)) return undefined
    if (e.status === 429) {
      if (e.code !== 'rate_limited') return undefined // session_limit: only a DELETE helps
      const after = (e as { retryAfterSeconds?: number }).retryAfterSeconds
      return Math.max(backoffMs, after !== undefined ? after * 1000 : 0)
    }
    if (e.code === 'memory_signing_unconfigured') return undefined
    return mode === 'idempotent' ? backoffMs : undefined
  }
  if (e instanceof StepkvTimeout || e instanceof StepkvNetworkError) return mode === 'idempotent' ? backoffMs : undefined
  return undefined
}

function ifMatch(etag?: string): Record<string, string> {
  return etag ? { 'if-match': etag } : {}
}

/** JSON bodies: bytes (images) as base64 strings, as the API reads them. */
function jsonBytes(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) {
    let s = ''
    for (let i = 0; i < value.length; i += 0x8000) s += String.fromCharCode(...value.subarray(i, i + 0x8000))
    return btoa(s)
  }
  return value
}

function asProblem(status: number, type: string, bytes: Uint8Array): Problem {
  const text = new TextDecoder().decode(bytes)
  try {
    const p = (type === MSGPACK ? unpack(bytes) : JSON.parse(text)) as Problem
    if (p && typeof p === 'object' && typeof p.code === 'string') return p
  } catch {
    // not a problem body: a proxy's error page, say
  }
  return { type: 'about:blank', title: `HTTP ${status}`, status, code: `http_${status}`, detail: text.slice(0, 200) }
}

/**
 * One session with its step numbering: `step()` sends `seq + 1` and advances `seq` on success, so
 * a failed step (4xx/5xx, nothing consumed on the server) can simply be sent again.
 * After a `StepkvTimeout`/`StepkvNetworkError` that outlived the retries, the step may or may not
 * have run: `resync()` reads the server's seq before going on.
 */
export class Session {
  /** The last successful step (0 before any). */
  seq: number
  /** The session's ETag after the last call that returned one. */
  etag: string

  readonly client: StepkvClient
  info: SessionInfo

  constructor(client: StepkvClient, info: SessionInfo) {
    this.client = client
    this.info = info
    this.seq = info.seq
    this.etag = info.etag
  }

  get id(): string {
    return this.info.id
  }

  /** Runs the next step. @throws as `StepkvClient.step` */
  async step(observation: Observation, options?: StepOptions): Promise<StepReply> {
    const reply = await this.client.step(this.id, this.seq + 1, observation, options)
    this.seq = reply.seq
    this.etag = reply.memory.etag
    return reply
  }

  /** The same session over its WebSocket, continuing from `seq` (steps sent there do not advance
   * this object's `seq`: `resync()` after closing it). */
  connect(): Promise<SocketSession> {
    return this.client.connect(this.id, this.seq)
  }

  /** Re-reads the session (seq, ETag) from the server. */
  async resync(): Promise<SessionInfo> {
    return this.adopt(await this.client.info(this.id))
  }

  /** Starts a new episode (same configuration). */
  async reset(): Promise<SessionInfo> {
    return this.adopt(await this.client.reset(this.id))
  }

  /** Keeps the current state as snapshot `name`. */
  snapshot(name?: string): Promise<SnapshotInfo> {
    return this.client.snapshot(this.id, name)
  }

  /** Goes back to snapshot `name` (seq continues from the snapshot's). */
  async rollback(name: string): Promise<SessionInfo> {
    return this.adopt(await this.client.rollback(this.id, name))
  }

  /** A new session with this one's configuration and memory (or a snapshot's). */
  async fork(snapshot?: string): Promise<Session> {
    return new Session(this.client, await this.client.fork(this.id, snapshot))
  }

  /** Changes the policy or its budget (409 `policy_incompatible` where the memory does not allow it). */
  async reconfigure(policy: PolicySpec): Promise<SessionInfo> {
    return this.adopt(await this.client.reconfigure(this.id, policy))
  }

  /** Deletes the session. */
  delete(): Promise<{ deleted: true }> {
    return this.client.deleteSession(this.id)
  }

  private adopt(info: SessionInfo): SessionInfo {
    this.info = info
    this.seq = info.seq
    this.etag = info.etag
    return info
  }
}
