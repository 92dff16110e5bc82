/**
 * Inside workerd (vitest Workers pool): ORT-web wasm runs the model, a session's memory survives
 * the Durable Object being torn down, and memories over the 1 MiB chunk size round-trip.
 */
import { env, evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { SessionStore, CHUNK_BYTES } from '../../worker/storage.ts'
import { api, logitsOf, relErr } from '../../sim/client.ts'

const client = api((url, init) => exports.default.fetch(new Request(url, init)))
const texts = Array.from({ length: 11 }, (_, i) => `step ${i + 1}: click the ${['menu', 'form', 'list'][i % 3]}`)

async function runSteps(id: string, from: number, to: number) {
  const replies = []
  for (let seq = from; seq <= to; seq++) {
    const r = await client.step(id, seq, { text: texts[seq - 1] }, { returnLogits: true })
    expect(r.status, JSON.stringify(r.data)).toBe(200)
    replies.push(r.data)
  }
  return replies
}

describe('SessionObject in workerd', () => {
  it('continues after the Durable Object is torn down with the same nextPosition and logits', async () => {
    const a = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    const b = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    const uninterrupted = await runSteps(a, 1, 11)

    const before = await runSteps(b, 1, 10)
    const stub = env.SESSIONS.get(env.SESSIONS.idFromName(`dev/${b}`))
    await evictDurableObject(stub)
    // The evicted object holds no hot memory; it must reload from its SQLite chunks.
    const [after] = await runSteps(b, 11, 11)

    expect(before[9].memory.nextPosition).toBe(uninterrupted[9].memory.nextPosition)
    const expectedStart = texts.slice(0, 10).reduce((n, t) => n + new TextEncoder().encode(t).length, 0)
    expect(before[9].memory.nextPosition).toBe(expectedStart)
    expect(after.memory.nextPosition).toBe(uninterrupted[10].memory.nextPosition)
    expect(after.memory.tokensPerLayer).toEqual(uninterrupted[10].memory.tokensPerLayer)
    expect([...logitsOf(after)]).toEqual([...logitsOf(uninterrupted[10])])
    expect(after.backend).toBe('wasm')
  })

  it('full policy: k steps one at a time give the logits of one prefill of all k prefixes', async () => {
    const k = 5
    const stepwise = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    const replies = await runSteps(stepwise, 1, k)
    const once = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    const all = await client.step(once, 1, { text: texts.slice(0, k).join('') }, { returnLogits: true })
    const big = logitsOf(all.data)
    const vocab = all.data.logits.dims[1]
    let offset = 0
    for (const r of replies) {
      const rows = r.logits.dims[0]
      const expected = big.subarray(offset * vocab, (offset + rows) * vocab)
      expect(relErr(logitsOf(r), expected)).toBeLessThanOrEqual(1e-4)
      offset += rows
    }
    expect(offset).toBe(all.data.logits.dims[0])
    expect(replies[k - 1].memory.nextPosition).toBe(all.data.memory.nextPosition)
    expect(replies[k - 1].memory.tokensPerLayer).toEqual(all.data.memory.tokensPerLayer)
  })

  it('tempofit: the bank holds the last N frames, survives eviction, and differs from no memory', async () => {
    const create = () => client.createSession({ model: 'tiny-gqa-tempo', policy: { name: 'tempofit', params: { frames: 3 } } })
    const a = (await create()).data.id as string
    const b = (await create()).data.id as string
    const straight = await runSteps(a, 1, 6)
    await runSteps(b, 1, 5)
    await evictDurableObject(env.SESSIONS.get(env.SESSIONS.idFromName(`dev/${b}`)))
    const [resumed] = await runSteps(b, 6, 6)
    expect([...logitsOf(resumed)]).toEqual([...logitsOf(straight[5])])
    // The bank holds frames 4, 5, 6 (3 frames) of the 2 memory layers; no KV is carried.
    const frameTokens = texts.slice(3, 6).reduce((n, t) => n + new TextEncoder().encode(t).length, 0)
    expect(straight[5].memory.tokensPerLayer).toEqual([frameTokens, frameTokens])
    // Step 1 sees an empty bank; a later step with the same text sees memory and its logits move.
    const fresh = (await create()).data.id as string
    const [alone] = await runSteps(fresh, 1, 1)
    const again = await client.step(fresh, 2, { text: texts[0] }, { returnLogits: true })
    expect(relErr(logitsOf(again.data), logitsOf(alone))).toBeGreaterThan(1e-3)
  })

  it('refuses at creation a policy the model cannot serve (400)', async () => {
    const r = await client.createSession({ model: 'tiny-gqa', policy: { name: 'tempofit' } })
    expect(r.status).toBe(400)
    expect(r.data.code).toBe('invalid_policy')
    expect(r.data.detail).toMatch(/needs the model port 'tempo'/)
    const u = await client.createSession({ policy: { name: 'nope' } })
    expect(u.status).toBe(400)
    expect(u.data.detail).toMatch(/unknown policy 'nope'/)
  })

  it("layout 'fixed': the same actions, memory and logits (≤ 1e-5) as dynamic; refused for full, on GPU and on a policy change to full", async () => {
    const policy = { name: 'window', params: { sinkTokens: 4, recentTokens: 36 } }
    const dyn = (await client.createSession({ policy })).data.id as string
    const created = await client.createSession({ policy, layout: 'fixed' })
    expect(created.status).toBe(201)
    expect(created.data.layout).toBe('fixed')
    expect((await client.info(dyn)).data.layout).toBe('dynamic')
    const fix = created.data.id as string
    const [a, b] = [await runSteps(dyn, 1, 5), await runSteps(fix, 1, 5)]
    for (let i = 0; i < 5; i++) {
      expect(b[i].memory.tokensPerLayer).toEqual(a[i].memory.tokensPerLayer)
      expect(b[i].memory.nextPosition).toBe(a[i].memory.nextPosition)
      expect(relErr(logitsOf(b[i]), logitsOf(a[i]))).toBeLessThanOrEqual(1e-5)
    }
    expect(a[4].memory.tokensPerLayer[0]).toBe(40) // the budget filled: eviction ran in both
    const full = await client.createSession({ policy: { name: 'full' }, layout: 'fixed' })
    expect(full.status).toBe(400)
    expect(full.data.code).toBe('invalid_policy')
    expect(full.data.detail).toMatch(/layout 'fixed'.*budget/)
    // a budget whose padded past no step could hold is refused at creation, not at every step
    const huge = await client.createSession({ policy: { name: 'window', params: { sinkTokens: 4, recentTokens: 60_000 } }, layout: 'fixed' })
    expect(huge.status).toBe(400)
    expect(huge.data.code).toBe('invalid_policy')
    expect(huge.data.detail).toMatch(/layout 'fixed' pads every step's past to the budget of 60004 tokens, over the session limit of \d+ tokens/)
    expect((await client.createSession({ policy: { name: 'window', params: { sinkTokens: 4, recentTokens: 60_000 } } })).status).toBe(201)
    const bad = await client.createSession({ policy, layout: 'static' })
    expect(bad.status).toBe(400)
    const change = await client.call('PATCH', `/v1/sessions/${fix}`, { policy: { name: 'full' } })
    expect(change.status).toBe(400)
    expect(change.data.code).toBe('invalid_policy')
    expect((await client.info(fix)).data.policy.name).toBe('window') // nothing changed
    const gpu = await client.createSession({ policy, layout: 'fixed', backend: 'gpu' })
    expect(gpu.status).toBe(400)
    expect(gpu.data.code).toBe('invalid_layout')
  })

  it('stores a 3 MB memory in ≤ 1 MiB chunks and reads it back byte-exact', async () => {
    const id = (await client.createSession()).data.id as string
    const stub = env.SESSIONS.get(env.SESSIONS.idFromName(`dev/${id}`))
    const blob = new Uint8Array(3_000_003)
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 2654435761) >>> 24
    const read = await runInDurableObject(stub, (_obj, state) => {
      const store = new SessionStore(state.storage)
      store.save({ seq: 5, memory: blob, reply: null })
      const sizes = state.storage.sql
        .exec<{ n: number }>('SELECT length(data) AS n FROM memory_chunks ORDER BY idx')
        .toArray()
        .map((r) => r.n)
      return { sizes, back: store.memory()!, seq: store.seq() }
    })
    expect(read.sizes).toEqual([CHUNK_BYTES, CHUNK_BYTES, 3_000_003 - 2 * CHUNK_BYTES])
    expect(read.seq).toBe(5)
    expect(read.back.length).toBe(blob.length)
    expect(Buffer.compare(Buffer.from(read.back), Buffer.from(blob))).toBe(0)
  })
})
