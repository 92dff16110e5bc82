/**
 * The Durable Object's forwarding client (worker/gpu-forward.ts) against a GPU host app behind a
 * fake service binding: the host is seeded when it holds no state, tag mismatches re-seed, the
 * host's 4xx problems pass through with their code, a wrong secret is a 502, an unreachable host is
 * 503 `gpu_host_unavailable`, or a fallback when `GPU_FALLBACK` is "wasm".
 */
import { describe, expect, it } from 'vitest'
import { encodeMemory } from '../../memory/codec.ts'
import { StepkvError } from '../../memory/errors.ts'
import { MemoryStore } from '../../gpu/durable.ts'
import { hostApp } from '../../gpu/host-app.ts'
import { HostSessions } from '../../gpu/host-sessions.ts'
import { defaultModelsDir, modelsFrom } from '../../gpu/host.ts'
import { nodeModelSource } from '../../gpu/node-models.ts'
import { selectBackend } from '../../gpu/webgpu.ts'
import { initialMemory, policyFor } from '../../worker/engine.ts'
import type { Env } from '../../worker/env.ts'
import { checkBackend, forwardStep, type ForwardState } from '../../worker/gpu-forward.ts'
import { unpackBody } from '../../worker/body.ts'

const SECRET = 'forward-secret-0123456789'
const WINDOW = { name: 'window', params: { sinkTokens: 4, recentTokens: 40 } }

async function setup() {
  const store = new MemoryStore()
  const sessions = new HostSessions({ choice: await selectBackend('wasm'), store, model: modelsFrom(defaultModelsDir()), maxHot: 1 })
  const app = hostApp({ sessions, secret: SECRET })
  let down = false
  const env = {
    GPU_HOST: { fetch: async (req: Request) => (down ? Promise.reject(new TypeError('fetch failed: connection refused')) : app.fetch(req)) },
    GPU_HOST_SECRET: SECRET,
  } as unknown as Env
  const m = nodeModelSource('tiny-gqa').manifest
  const blob = encodeMemory(initialMemory(m, policyFor(m, WINDOW.name, WINDOW.params)), { policy: WINDOW, dtype: 'float32' })
  const state = (seq: number, gen: number): ForwardState => ({
    hostId: 'a'.repeat(64),
    config: { id: 's_x', tenant: 'dev', model: 'tiny-gqa', policy: WINDOW, memoryDtype: 'float32', createdAt: '', backend: 'gpu' },
    seq,
    durableSeq: 0,
    etagBefore: `"${seq}.${gen}"`,
    etagAfter: `"${seq + 1}.${gen + 1}"`,
    memory: () => blob,
    maxPrefixTokens: 4096,
  })
  return { env, sessions, store, state, setDown: (v: boolean) => (down = v) }
}

describe('GPU forwarding (worker/gpu-forward.ts)', () => {
  it('seeds a host that holds no state, then steps; a stale tag re-seeds', async () => {
    const { env, state } = await setup()
    const first = await forwardStep(env, state(0, 0), { seq: 1, observation: { text: 'hello there' } })
    if (!('done' in first)) throw new Error('expected a forwarded step')
    const reply = unpackBody(first.done.reply) as Record<string, unknown>
    expect(reply).toMatchObject({ seq: 1, backend: 'wasm', durableSeq: 1 })
    expect(first.done.durable?.seq).toBe(1)
    const second = await forwardStep(env, state(1, 1), { seq: 2, observation: { text: 'and again' } })
    expect('done' in second).toBe(true)
    // The Durable Object moved on without the host (e.g. an import): its tag is unknown to the
    // host, which is seeded from the durable copy (step 0 here: steps 1–2 declared lost).
    const third = await forwardStep(env, { ...state(2, 7), durableSeq: 0 }, { seq: 3, observation: { text: 'third' } })
    if (!('done' in third)) throw new Error('expected a forwarded step')
    expect((unpackBody(third.done.reply) as Record<string, unknown>).restored).toEqual({ fromSeq: 0, lostSteps: 2 })
  })

  it("re-seeds a host whose durable copy cannot be read (500 stored_memory_corrupt)", async () => {
    const { env, sessions, store, state } = await setup()
    expect('done' in (await forwardStep(env, state(0, 0), { seq: 1, observation: { text: 'hello there' } }))).toBe(true)
    // another session pushes it out of memory (maxHot 1), then its stored copy is damaged
    await sessions.create('other', { model: 'tiny-gqa', policy: WINDOW, memoryDtype: 'float32' })
    await new Promise((r) => setTimeout(r, 50))
    const rec = store.records.get('a'.repeat(64))!
    store.records.set('a'.repeat(64), { ...rec, memory: rec.memory.subarray(0, 100) })
    const direct = await sessions.info('a'.repeat(64)).catch((e) => e)
    expect([direct.status, direct.code]).toEqual([500, 'stored_memory_corrupt'])
    const next = await forwardStep(env, { ...state(1, 1), durableSeq: 1 }, { seq: 2, observation: { text: 'and again' } })
    if (!('done' in next)) throw new Error('expected a forwarded step')
    expect(unpackBody(next.done.reply)).toMatchObject({ seq: 2 })
  })

  it("passes the host's 4xx problems on, a wrong secret is 502", async () => {
    const { env, state } = await setup()
    const bad = await forwardStep(env, state(0, 0), { seq: 1, observation: { image: new Uint8Array(4) } }).catch((e) => e)
    expect(bad).toBeInstanceOf(StepkvError)
    expect([bad.status, bad.code]).toEqual([400, 'invalid_observation'])
    const wrong = await forwardStep({ ...env, GPU_HOST_SECRET: 'nope' } as Env, state(0, 0), { seq: 1, observation: { text: 'x' } }).catch((e) => e)
    expect([wrong.status, wrong.code]).toEqual([502, 'gpu_host_error'])
  })

  it('answers 503 for an unreachable host, or falls back when configured', async () => {
    const { env, state, setDown } = await setup()
    setDown(true)
    const e = await forwardStep(env, { ...state(5, 5), durableSeq: 3 }, { seq: 6, observation: { text: 'x' } }).catch((err) => err)
    expect([e.status, e.code]).toEqual([503, 'gpu_host_unavailable'])
    expect(e.details.durableSeq).toBe(3)
    const f = await forwardStep({ ...env, GPU_FALLBACK: 'wasm' } as Env, { ...state(5, 5), durableSeq: 3 }, { seq: 6, observation: { text: 'x' } })
    expect(f).toEqual({ fallback: { from: 'gpu', reason: expect.stringContaining('unreachable'), restoredFromSeq: 3, lostSteps: 2 } })
  })

  it('refuses backend gpu on a deployment without a GPU host', () => {
    expect(() => checkBackend({} as Env, 'gpu')).toThrow(/GPU host/)
    expect(() => checkBackend({ GPU_HOST_URL: 'http://h' } as Env, 'gpu')).not.toThrow()
    expect(() => checkBackend({} as Env, 'wasm')).not.toThrow()
  })
})
