/**
 * @module Forwarding a GPU session's step from its Durable Object to a GPU host (`gpu/host-app.ts`):
 * a service binding `GPU_HOST` or the URL `GPU_HOST_URL`, with the shared secret
 * `GPU_HOST_SECRET` in `x-stepkv-host-secret`. The Durable Object stays the session's authority
 * (seq rules, replies, the durable copy it receives from the host); the host holds the hot memory.
 * State tags (the Durable Object's ETag before and after the step) keep the two in step: a host
 * that holds no state or another one (restarted, evicted, or the session ran on the fallback or was
 * imported meanwhile) is seeded with the Durable Object's durable copy and the step retried.
 * A host that cannot be reached (network error, timeout, 502/503/504) gives 503
 * `gpu_host_unavailable`, unless `GPU_FALLBACK = "wasm"`: then the step runs in the Worker from the
 * last durable state and its reply says so (`fallback`).
 */
import { pack, unpack } from 'msgpackr'
import { BadRequestError, StepkvError } from '../memory/errors.ts'
import type { StepRequest } from './engine.ts'
import type { Env, StepLimits } from './env.ts'
import { packReply, unpackBody } from './body.ts'
import { checkMemoryBytes } from './import-check.ts'
import { etagOf } from './precondition.ts'
import type { SessionConfig, SessionStore } from './storage.ts'
import { readMemory, type MemoryPointer } from './memory-offload.ts'

/** Where a session's steps run: in the Worker (wasm) or on a GPU host. */
export type SessionBackend = 'wasm' | 'gpu'

/** What the Durable Object reports when a GPU step ran in the Worker instead. */
export interface FallbackInfo {
  from: 'gpu'
  reason: string
  /** The step the durable memory it ran from belongs to. */
  restoredFromSeq: number
  /** Steps after it that the host had run and are lost (declared before by `durableSeq`). */
  lostSteps: number
}

/** A forwarded step's result: the host's packed reply and, when it wrote one, the durable copy. */
export interface Forwarded {
  reply: Uint8Array
  durable?: { seq: number; memory: Uint8Array }
}

/** The Durable Object state a forward needs. */
export interface ForwardState {
  /** Host session id: the Durable Object's id (hex), unique per tenant and session. */
  hostId: string
  config: SessionConfig
  /** Last successful seq, and the seq of the stored (durable) memory. */
  seq: number
  durableSeq: number
  /** ETag before this step and after it. */
  etagBefore: string
  etagAfter: string
  /** The stored memory blob (seeding the host; in SQLite or R2, `memory-offload.ts`). */
  memory(): Uint8Array | Promise<Uint8Array>
  /** The tenant's prefix token limit, passed on to the host. */
  maxPrefixTokens: number
}

/** True when this deployment has a GPU host (binding or URL). */
export function hasGpuHost(env: Env): boolean {
  return Boolean(env.GPU_HOST || env.GPU_HOST_URL)
}

/**
 * Checks a session's requested backend at creation.
 * @throws BadRequestError (`backend_unavailable`) for `gpu` on a deployment without a GPU host
 */
export function checkBackend(env: Env, backend: SessionBackend | undefined): void {
  if (backend === 'gpu' && !hasGpuHost(env))
    throw new BadRequestError("backend 'gpu' needs a GPU host, and this deployment has none (GPU_HOST_URL or a GPU_HOST service binding)", {}, 'backend_unavailable')
}

class HostUnavailable extends Error {}

/**
 * Forwards step `request` to the GPU host; seeds the host and retries once when it holds no state
 * of the session, another one, or a durable copy it cannot read (500 `stored_memory_corrupt`).
 * @returns the host's reply, or `{fallback}` when the host is unreachable and `GPU_FALLBACK` is
 *   "wasm" (the caller then runs the step itself from its durable memory)
 * @throws StepkvError `gpu_host_unavailable` (503) when unreachable without fallback; the host's
 *   own problem (same code and status) for a 4xx; `gpu_host_error` (502) for a host 5xx
 */
export async function forwardStep(env: Env, s: ForwardState, request: StepRequest): Promise<{ done: Forwarded } | { fallback: FallbackInfo }> {
  try {
    let r = await call(env, 'POST', `/v1/sessions/${s.hostId}/steps`, request, { 'x-stepkv-base': s.etagBefore, 'x-stepkv-next': s.etagAfter, 'x-stepkv-max-prefix-tokens': String(s.maxPrefixTokens) })
    // the host holds no state of the session, another one, or one it cannot read: seed it with ours
    if (r.status === 404 || (r.status === 409 && r.problem?.code === 'host_state_mismatch') || (r.status === 500 && r.problem?.code === 'stored_memory_corrupt')) {
      const { model, policy, memoryDtype, kivi } = s.config
      const seed = await call(env, 'PUT', `/v1/sessions/${s.hostId}/state`, { config: { model, policy, memoryDtype, ...(kivi && { kivi }) }, seq: s.seq, tag: s.etagBefore, memory: await s.memory() })
      if (seed.status !== 200) throw problemError(seed)
      r = await call(env, 'POST', `/v1/sessions/${s.hostId}/steps`, request, { 'x-stepkv-base': s.etagBefore, 'x-stepkv-next': s.etagAfter, 'x-stepkv-max-prefix-tokens': String(s.maxPrefixTokens) })
    }
    if (r.status !== 200) throw problemError(r)
    const body = unpack(r.bytes) as Forwarded
    return { done: { reply: new Uint8Array(body.reply), ...(body.durable && { durable: { seq: body.durable.seq, memory: new Uint8Array(body.durable.memory) } }) } }
  } catch (e) {
    if (!(e instanceof HostUnavailable)) throw e
    if ((env.GPU_FALLBACK ?? 'none') === 'wasm')
      return { fallback: { from: 'gpu', reason: e.message, restoredFromSeq: s.durableSeq, lostSteps: s.seq - s.durableSeq } }
    throw new StepkvError('gpu_host_unavailable', 503, `the GPU host is unavailable (${e.message}); the session is intact up to durableSeq ${s.durableSeq}: retry later`, { durableSeq: s.durableSeq })
  }
}

interface HostReply {
  status: number
  bytes: Uint8Array
  problem?: { code: string; status: number; detail: string; [k: string]: unknown }
}

async function call(env: Env, method: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<HostReply> {
  const timeoutMs = Number(env.GPU_HOST_TIMEOUT_MS ?? 30_000) || 30_000
  const init: RequestInit = {
    method,
    headers: { 'content-type': 'application/msgpack', accept: 'application/msgpack', 'x-stepkv-host-secret': env.GPU_HOST_SECRET ?? '', ...headers },
    body: pack(body) as Uint8Array<ArrayBuffer>,
    signal: AbortSignal.timeout(timeoutMs),
  }
  let res: Response
  try {
    res = env.GPU_HOST ? await env.GPU_HOST.fetch(new Request(`https://gpu-host${path}`, init)) : await fetch(`${env.GPU_HOST_URL!.replace(/\/$/, '')}${path}`, init)
  } catch (e) {
    throw new HostUnavailable((e as Error)?.name === 'TimeoutError' ? `no answer in ${timeoutMs} ms` : `unreachable: ${String((e as Error)?.message ?? e)}`)
  }
  if ([502, 503, 504].includes(res.status) && !(res.headers.get('content-type') ?? '').includes('problem')) throw new HostUnavailable(`HTTP ${res.status}`)
  const bytes = new Uint8Array(await res.arrayBuffer())
  const problem = (res.headers.get('content-type') ?? '').includes('problem+json') ? (JSON.parse(new TextDecoder().decode(bytes)) as HostReply['problem']) : undefined
  if (problem?.code === 'gpu_device_lost') throw new HostUnavailable('the GPU device was lost')
  return { status: res.status, bytes, problem }
}

function problemError(r: HostReply): StepkvError {
  const p = r.problem
  if (r.status === 401) return new StepkvError('gpu_host_error', 502, 'the GPU host refused the shared secret (GPU_HOST_SECRET differs)')
  if (!p || r.status >= 500) return new StepkvError('gpu_host_error', 502, `the GPU host failed (HTTP ${r.status}${p ? `: ${p.detail}` : ''})`)
  const { type: _t, title: _ti, status, code, detail, requestId: _r, ...details } = p as Record<string, unknown> & { status: number; code: string; detail: string }
  return new StepkvError(code, status, detail, details)
}

/** What `forwardAndSave` hands back to the Durable Object's step (as its local step does). */
export interface ForwardedStep {
  reply: Uint8Array
  replayed: false
  prefixTokens: number
  memoryTokens: number
  memoryBytes: number
  timings?: Record<string, number>
  /** True when a new durable memory was stored (the Durable Object drops its decoded copy). */
  memoryChanged: boolean
}

/**
 * The Durable Object's side of a GPU step (seq rules already checked): forwards it, then stores
 * seq, reply and (when the host wrote one) the durable memory in one transaction.
 * @param hostId the Durable Object's id (the session's id on the host)
 * @param persist writes the durable copy of step `seq` (R2 first when large, `persistMemory`), then
 *   runs `commit`, the one transaction storing it with seq and reply
 * @returns the stored step, or `{fallback}` (host down, `GPU_FALLBACK` "wasm"): the caller runs the
 *   step itself from its stored memory and puts `fallback` in the reply
 * @throws as `forwardStep`; StepkvError `memory_limit` (422) when the host's durable copy is over
 *   the tenant's stored memory limit (nothing stored; the host is re-seeded on the next step)
 */
export async function forwardAndSave(
  env: Env,
  store: SessionStore,
  hostId: string,
  config: SessionConfig,
  request: StepRequest,
  limits: StepLimits,
  persist: (seq: number, blob: Uint8Array, commit: (offloaded: MemoryPointer | null) => void) => Promise<void>,
): Promise<ForwardedStep | { fallback: FallbackInfo }> {
  const seq = store.seq()
  const generation = store.generation()
  const durableSeq = store.durableSeq()
  const f = await forwardStep(env, {
    hostId,
    config,
    seq,
    durableSeq,
    etagBefore: etagOf(seq, generation),
    etagAfter: etagOf(request.seq, generation + 1),
    memory: async () => (await readMemory(env, store))!,
    maxPrefixTokens: limits.prefixTokensPerStep,
  }, request)
  if ('fallback' in f) return f
  const { durable } = f.done
  // The reply names the Durable Object's state after the step (the host does not know its ETag).
  const r = unpackBody(f.done.reply) as { memory?: { tokensPerLayer?: number[]; bytes?: number; etag?: string }; timings?: Record<string, number> }
  r.memory = { ...r.memory, etag: etagOf(request.seq, generation + 1) }
  const reply = packReply(r)
  if (durable) {
    checkMemoryBytes(durable.memory.byteLength, limits.memoryBytesPerSession, 422)
    await persist(durable.seq, durable.memory, (offloaded) => {
      store.save({ seq: request.seq, memory: durable.memory, reply, offloaded })
      if (durable.seq !== request.seq) store.saveForwarded(request.seq, reply, durable.seq)
    })
  } else store.saveForwarded(request.seq, reply, durableSeq)
  return {
    reply,
    replayed: false,
    prefixTokens: 0,
    memoryTokens: r.memory?.tokensPerLayer?.[0] ?? 0,
    memoryBytes: r.memory?.bytes ?? 0,
    timings: r.timings,
    memoryChanged: Boolean(durable),
  }
}
