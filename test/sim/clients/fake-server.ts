/**
 * @module An in-process stand-in for the stepkv API, served through a `fetch` function: sessions,
 * seq-checked steps whose action comes from a callback (the tests answer with the simulators'
 * experts), deletes; JSON or msgpack both ways. A virtual clock lets a step "take" any number of ms
 * without waiting.
 */
import { pack, unpack } from 'msgpackr'
import type { Fetch } from '../../../sim/client.ts'
import type { Clock } from '../../../sim/clients/session.ts'

/** Virtual time (ms): `sleep` and slow steps advance it instantly. */
export class FakeClock implements Clock {
  t = 0
  now = () => this.t
  sleep = async (ms: number) => {
    this.t += Math.max(0, ms)
  }
}

export interface FakeSession {
  id: string
  model: string
  policy: unknown
  seq: number
  deleted: boolean
}

/** What a step handler sees. */
export interface FakeStep {
  session: FakeSession
  observation: Record<string, unknown>
  /** Step calls answered before this one, over all sessions. */
  call: number
  /** The clock's time when the request arrived (ms). */
  at: number
}

export interface FakeServerOptions {
  /** The step's action. */
  act(step: FakeStep): unknown
  /** Virtual latency of step `call` (ms, default 0), added to the clock before replying. */
  delayMs?(call: number): number
  clock?: FakeClock
}

export interface FakeServer {
  fetch: Fetch
  sessions: FakeSession[]
  steps: FakeStep[]
}

export function fakeServer(o: FakeServerOptions): FakeServer {
  const sessions: FakeSession[] = []
  const steps: FakeStep[] = []
  const fetch: Fetch = async (input, init = {}) => {
    const url = new URL(input)
    const headers = new Headers(init.headers)
    const msgpack = headers.get('accept') === 'application/msgpack'
    const reply = (status: number, data: unknown) =>
      new Response(msgpack ? (pack(data) as Uint8Array<ArrayBuffer>) : JSON.stringify(data), {
        status,
        headers: { 'content-type': msgpack ? 'application/msgpack' : 'application/json' },
      })
    if (headers.get('authorization') !== 'Bearer dev-key-stepkv-0000000000000000')
      return reply(401, { code: 'unauthorized' })
    const body =
      init.body === undefined
        ? undefined
        : headers.get('content-type') === 'application/msgpack'
          ? unpack(init.body as Uint8Array)
          : JSON.parse(init.body as string)
    const parts = url.pathname.split('/').filter(Boolean) // v1, sessions, id?, steps?
    const session = sessions.find((s) => s.id === parts[2] && !s.deleted)
    if (init.method === 'POST' && parts.length === 2) {
      const s = {
        id: `s_${sessions.length}`,
        model: body.model,
        policy: body.policy,
        seq: 0,
        deleted: false,
      }
      sessions.push(s)
      return reply(201, { id: s.id, model: s.model, policy: s.policy, seq: 0 })
    }
    if (!session) return reply(404, { code: 'not_found', detail: `no session ${parts[2]}` })
    if (init.method === 'DELETE') {
      session.deleted = true
      return reply(200, { deleted: true })
    }
    if (init.method === 'POST' && parts[3] === 'steps') {
      if (body.seq !== session.seq + 1)
        return reply(409, { code: 'seq_conflict', detail: `seq ${body.seq}` })
      const step = {
        session,
        observation: body.observation,
        call: steps.length,
        at: o.clock?.now() ?? 0,
      }
      steps.push(step)
      const action = o.act(step)
      if (o.clock) o.clock.t += o.delayMs?.(step.call) ?? 0
      session.seq = body.seq
      const tokens = 100 * session.seq
      return reply(200, {
        seq: session.seq,
        action,
        memory: {
          tokensPerLayer: [tokens],
          bytes: 1000 * session.seq,
          nextPosition: tokens,
          durableSeq: session.seq,
        },
        timings: {},
        backend: 'fake',
      })
    }
    return reply(404, { code: 'not_found' })
  }
  return { fetch, sessions, steps }
}
