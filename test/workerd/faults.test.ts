/**
 * A step is atomic under a real Durable Object reset (`ctx.abort()`, not a thrown exception) at
 * every boundary between its stages — load, infer, policy, persist (and inside the persist
 * transaction), reply: the aborted request fails, the object restarts from storage holding either
 * the old state (the step did not happen: the retry runs it exactly once) or the new one (the retry
 * replays the stored reply byte for byte), and the session then ends exactly where an uninterrupted
 * session does: same replies, same ETag (one memory write per step), the same exported memory.
 * The hook is installed from inside the object (`runInDurableObject`, `worker/faults.ts`). Also: a
 * step refused after its policy update (the stored-memory limit) leaves the object's live memory as
 * it was, so the next step runs on exactly the stored state.
 */
import { createExecutionContext, env, runInDurableObject } from 'cloudflare:test'
import { exports } from 'cloudflare:workers'
import { unpack } from 'msgpackr'
import { beforeAll, describe, expect, it } from 'vitest'
import { api, DEV_KEY, logitsOf } from '../../sim/client.ts'
import { app } from '../../worker/app.ts'
import { setFaultHook, STEP_STAGES, type StepStage } from '../../worker/faults.ts'
import type { SessionObject } from '../../worker/session-object.ts'
import { SessionStore } from '../../worker/storage.ts'

const client = api((url, init) => exports.default.fetch(new Request(url, init)))
const STEPS = 5
/** The reset hits step FAULT_SEQ; steps before and after it run normally. */
const FAULT_SEQ = 3
const text = (seq: number) => `step ${seq}: open the ${['menu', 'form', 'list', 'dialog', 'tab'][seq % 5]} and read it`
const CONFIGS = {
  window: { model: 'tiny-gqa', policy: { name: 'window', params: { sinkTokens: 4, recentTokens: 40 } } },
  h2o: { model: 'tiny-gqa', policy: { name: 'h2o', params: { budgetTokens: 48 } }, memoryDtype: 'kivi' },
  tempofit: { model: 'tiny-gqa-tempo', policy: { name: 'tempofit', params: { frames: 2 } } },
}
type ConfigName = keyof typeof CONFIGS

const stubOf = (id: string) => env.SESSIONS.get(env.SESSIONS.idFromName(`dev/${id}`))
const storedState = (id: string) =>
  runInDurableObject(stubOf(id), (_o, state) => {
    const store = new SessionStore(state.storage)
    return { seq: store.seq(), generation: store.generation(), reply: store.reply(), memory: store.memory() }
  })

/** Replies of an uninterrupted session (msgpack, with logits) and its export, per configuration. */
const reference: Record<string, { replies: any[]; memory: Uint8Array; etag: string }> = {}

async function stepOk(id: string, seq: number) {
  const r = await client.step(id, seq, { text: text(seq) }, { returnLogits: true }, true)
  expect(r.status, JSON.stringify(r.data)).toBe(200)
  return r.data
}

beforeAll(async () => {
  for (const [name, config] of Object.entries(CONFIGS)) {
    const id = (await client.createSession(config)).data.id as string
    const replies = []
    for (let seq = 1; seq <= STEPS; seq++) replies.push(await stepOk(id, seq))
    reference[name] = { replies, memory: (await client.exportMemory(id)).data, etag: (await client.info(id)).data.etag }
  }
})

/** Arms a one-shot reset of the session's object at `stage` (`ctx.abort()`); with `durableFirst`
 * the reset waits until the step's writes are durable (`storage.sync()`), so only the reply is lost. */
async function armReset(id: string, stage: StepStage, durableFirst: boolean) {
  await runInDurableObject(stubOf(id), (instance: SessionObject, state) => {
    setFaultHook(instance, (at) => {
      if (at !== stage) return
      setFaultHook(instance, undefined)
      if (!durableFirst) return state.abort(`test reset at ${stage}`)
      return state.storage.sync().then(() => state.abort(`test reset at ${stage}, writes durable`))
    })
  })
}

/** Sends a step whose object is reset mid-way: a 503 `session_reset` problem with Retry-After. */
async function stepThroughReset(id: string, seq: number) {
  const res = await exports.default.fetch(
    new Request(`http://stepkv.test/v1/sessions/${id}/steps`, {
      method: 'POST',
      headers: { authorization: `Bearer ${DEV_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ seq, observation: { text: text(seq) }, options: { returnLogits: true } }),
    }),
  )
  const body = await res.text()
  return { status: res.status, type: res.headers.get('content-type'), retryAfter: res.headers.get('retry-after'), body }
}

/** [configuration, stage, reset only once the step's writes are durable]. A reset right after the
 * persist transaction but before its writes are confirmed loses them with the reply (the output
 * gate never released it): the old state. Once they are durable, only the reply is lost: the new
 * state, and the retry must replay it. */
const cases = (['window', 'h2o', 'tempofit'] as ConfigName[]).flatMap((config) => [
  ...STEP_STAGES.filter((s) => config === 'window' || ['infer-policy', 'mid-persist', 'persist-reply'].includes(s)).map(
    (stage) => [config, stage, false] as const,
  ),
  [config, 'persist-reply', true] as const,
])

describe('Durable Object reset inside a step', () => {
  it('arming the hook needs STEPKV_TEST_HOOKS (it is "1" only in .dev.vars)', () => {
    expect(env.STEPKV_TEST_HOOKS).toBe('1')
    expect(STEP_STAGES).toEqual(['before-load', 'load-infer', 'infer-policy', 'policy-persist', 'mid-persist', 'persist-reply'])
  })

  it.each(cases)('%s: reset at %s (after the writes are durable: %s) → no lost or duplicated step', async (config, stage, persisted) => {
    const ref = reference[config]
    const id = (await client.createSession(CONFIGS[config])).data.id as string
    for (let seq = 1; seq < FAULT_SEQ; seq++) await stepOk(id, seq)
    const before = await storedState(id)
    expect(before.seq).toBe(FAULT_SEQ - 1)

    await armReset(id, stage, persisted)
    const failure = await stepThroughReset(id, FAULT_SEQ)
    expect(failure.status).toBe(503)
    expect(failure.type).toBe('application/problem+json')
    expect(failure.retryAfter).toBe('1')
    expect(JSON.parse(failure.body)).toMatchObject({ status: 503, code: 'session_reset', retryAfterSeconds: 1 })
    expect(failure.body).not.toMatch(/test reset|\bat .*\.ts:\d+|stack/) // no stack, no internals

    // The object restarted from storage: the old state whole, or the new state whole.
    const after = await storedState(id)
    if (persisted) {
      expect(after.seq).toBe(FAULT_SEQ)
      expect(after.generation).toBe(before.generation + 1)
      expect(after.reply).not.toBeNull()
    } else {
      expect(after.seq).toBe(before.seq)
      expect(after.generation).toBe(before.generation)
      expect(after.reply).toEqual(before.reply)
      expect(after.memory).toEqual(before.memory)
    }

    // The client's retry of the same seq.
    const retry = await stepOk(id, FAULT_SEQ)
    const expected = ref.replies[FAULT_SEQ - 1]
    expect(retry.action).toEqual(expected.action)
    expect(retry.memory).toEqual(expected.memory)
    expect([...logitsOf(retry)]).toEqual([...logitsOf(expected)])
    const afterRetry = await storedState(id)
    if (persisted) {
      // Replayed, not re-run: the stored reply, timings included, and no second memory write.
      expect(retry).toEqual(unpack(after.reply!))
      expect(afterRetry.generation).toBe(after.generation)
    } else {
      // Ran exactly once: one memory write.
      expect(afterRetry.generation).toBe(before.generation + 1)
    }
    expect(afterRetry.seq).toBe(FAULT_SEQ)

    for (let seq = FAULT_SEQ + 1; seq <= STEPS; seq++) {
      const r = await stepOk(id, seq)
      expect([...logitsOf(r)]).toEqual([...logitsOf(ref.replies[seq - 1])])
    }
    // Final state equals the uninterrupted session's: the same ETag (seq.generation) and memory.
    expect((await client.info(id)).data.etag).toBe(ref.etag)
    expect((await client.exportMemory(id)).data).toEqual(ref.memory)
  })
})


describe('a step refused after the policy update leaves the live memory as it was', () => {
  // The stored-memory limit is checked after the policy update and the encode (session-object.ts):
  // if a policy changed the hot memory in place, the next step would run on a memory that was never
  // stored. Each request runs app.fetch with a tenant whose memoryBytesPerSession the test sets.
  it.each(['window', 'h2o', 'tempofit'] as ConfigName[])('%s: refused at the memory limit, then the same step gives the uninterrupted replies', async (config) => {
    const KEY = 'faults-test-key-0000000000000000'
    const tenant = `faults-${crypto.randomUUID()}`
    let memoryBytesPerSession = 64 << 20
    const limited = api(
      async (url: string, init?: RequestInit): Promise<Response> =>
        app.fetch(new Request(url, init), { ...env, API_KEYS: JSON.stringify({ [KEY]: tenant }), TENANT_LIMITS: JSON.stringify({ [tenant]: { memoryBytesPerSession } }) }, createExecutionContext()),
      'http://stepkv.test',
      KEY,
    )
    const ref = reference[config]
    const id = (await limited.createSession(CONFIGS[config])).data.id as string
    for (let seq = 1; seq < FAULT_SEQ; seq++) expect((await limited.step(id, seq, { text: text(seq) }, { returnLogits: true }, true)).status).toBe(200)
    memoryBytesPerSession = 1000 // under any memory of these sessions
    const refused = await limited.step(id, FAULT_SEQ, { text: text(FAULT_SEQ) }, undefined, true)
    expect([refused.status, refused.data.code]).toEqual([422, 'memory_limit'])
    memoryBytesPerSession = 64 << 20
    for (let seq = FAULT_SEQ; seq <= STEPS; seq++) {
      const r = await limited.step(id, seq, { text: text(seq) }, { returnLogits: true }, true)
      expect(r.status).toBe(200)
      expect(r.data.memory).toEqual(ref.replies[seq - 1].memory)
      expect([...logitsOf(r.data)]).toEqual([...logitsOf(ref.replies[seq - 1])])
    }
  })
})
