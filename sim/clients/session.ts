/**
 * @module What the simulation clients share: the HTTP client type, a clock (injectable so tests
 * run on virtual time), and session calls that throw a readable error on any non-2xx reply.
 */
import type { api } from '../client.ts'

/** The minimal stepkv client of `sim/client.ts` (`api(fetch, url)`). */
export type Client = ReturnType<typeof api>

/** Wall clock for latency and pacing: `now()` in ms (monotonic), `sleep(ms)`. */
export interface Clock {
  now(): number
  sleep(ms: number): Promise<void>
}

/** `performance.now()` and `setTimeout`. */
export const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
}

/** A memory policy as `POST /v1/sessions` takes it. */
export interface PolicySpec {
  name: string
  params?: Record<string, number | string | boolean>
}

/** `memory` of a step reply. */
export interface MemorySummary {
  tokensPerLayer: number[]
  /** Serialized session memory (bytes). */
  bytes: number
  nextPosition: number
  durableSeq: number
}

/** A step reply; `action` is the adapter's decoded action. */
export interface StepReply<A> {
  seq: number
  action: A
  memory: MemorySummary
  timings: Record<string, number>
  backend: string
}

function failure(what: string, r: { status: number; data: unknown }): Error {
  const d = r.data as { code?: string; detail?: string; title?: string } | undefined
  const why = d && typeof d === 'object' ? (d.detail ?? d.title ?? JSON.stringify(d)) : String(d)
  return new Error(`${what}: HTTP ${r.status}${d?.code ? ` ${d.code}` : ''}: ${why}`)
}

/**
 * Creates a session.
 * @returns the session id
 * @throws Error with the server's problem detail unless the reply is 201
 */
export async function openSession(
  client: Client,
  model: string,
  policy: PolicySpec,
): Promise<string> {
  const r = await client.createSession({
    model,
    policy: { name: policy.name, params: policy.params ?? {} },
  })
  if (r.status !== 201) throw failure(`create session (${model}, ${policy.name})`, r)
  return r.data.id as string
}

/**
 * One step over msgpack (images travel as bin, not base64).
 * @throws Error with the server's problem detail unless the reply is 200
 */
export async function stepSession<A>(
  client: Client,
  id: string,
  seq: number,
  observation: unknown,
): Promise<StepReply<A>> {
  const r = await client.step(id, seq, observation, undefined, true)
  if (r.status !== 200) throw failure(`step ${seq} of ${id}`, r)
  return r.data as StepReply<A>
}

/** Deletes a session, best effort (a failure only leaves it in storage). */
export async function closeSession(client: Client, id: string): Promise<void> {
  try {
    await client.call('DELETE', `/v1/sessions/${id}`)
  } catch {
    // the episode's result does not depend on it
  }
}
