/**
 * Session lifecycle in workerd: reset (new episode, same configuration), snapshot and rollback,
 * fork, a policy or budget change where the memory allows it (409 where not), If-Match on each,
 * and idle expiry by Durable Object alarm (quota slot freed). Refused calls change nothing: the
 * exported memory is compared byte for byte before and after.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from 'cloudflare:test'
import { exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { api, logitsOf } from '../../sim/client.ts'
import { SessionStore } from '../../worker/storage.ts'

const client = api((url, init) => exports.default.fetch(new Request(url, init)))
const WINDOW = { name: 'window', params: { sinkTokens: 4, recentTokens: 48 } }
const texts = Array.from({ length: 8 }, (_, i) => `obs ${i + 1}: field ${(i * 37) % 11} is set`)

async function create(body: Record<string, unknown> = { policy: WINDOW }) {
  const r = await client.createSession(body)
  expect(r.status, JSON.stringify(r.data)).toBe(201)
  return r.data.id as string
}
async function step(id: string, seq: number, text = texts[seq - 1]) {
  const r = await client.step(id, seq, { text }, { returnLogits: true })
  expect(r.status, JSON.stringify(r.data)).toBe(200)
  return r.data
}
const blobOf = async (id: string) => [...((await client.exportMemory(id)).data as Uint8Array)]
const post = (id: string, route: string, body?: unknown, headers: Record<string, string> = {}) =>
  exports.default
    .fetch(
      new Request(`http://stepkv.test/v1/sessions/${id}/${route}`, {
        method: 'POST',
        headers: { authorization: 'Bearer dev-key-stepkv-0000000000000000', 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    )
    .then(async (r) => ({ status: r.status, data: (await r.json()) as any }))

describe('session lifecycle', () => {
  it('reset: seq 0, empty memory, same policy; the next step equals a fresh session’s first', async () => {
    const id = await create()
    for (let seq = 1; seq <= 3; seq++) await step(id, seq)
    const before = (await client.info(id)).data
    const reset = await post(id, 'reset')
    expect(reset.status, JSON.stringify(reset.data)).toBe(200)
    expect(reset.data.seq).toBe(0)
    expect(reset.data.policy).toEqual(before.policy)
    expect(reset.data.memory.tokensPerLayer.every((n: number) => n === 0)).toBe(true)
    expect(reset.data.memory.nextPosition).toBe(0)
    expect(reset.data.etag).not.toBe(before.etag)
    // seq 4 is now a conflict; seq 1 runs as in a new session.
    expect((await client.step(id, 4, { text: texts[3] })).status).toBe(409)
    const again = await step(id, 1, texts[5])
    const fresh = await step(await create(), 1, texts[5])
    expect([...logitsOf(again)]).toEqual([...logitsOf(fresh)])
  })

  it('reset with a stale If-Match → 412 and nothing changes; If-Match: * → 428', async () => {
    const id = await create()
    await step(id, 1)
    const etag = (await client.info(id)).data.etag
    await step(id, 2)
    const blob = await blobOf(id)
    const stale = await post(id, 'reset', {}, { 'if-match': etag })
    expect(stale.status).toBe(412)
    expect(stale.data.code).toBe('precondition_failed')
    expect((await post(id, 'reset', {}, { 'if-match': '*' })).status).toBe(428)
    expect(await blobOf(id)).toEqual(blob)
    const current = (await client.info(id)).data.etag
    expect((await post(id, 'reset', {}, { 'if-match': current })).status).toBe(200)
  })

  it('snapshot then rollback: the same memory bytes, seq, and the same next step', async () => {
    const id = await create()
    for (let seq = 1; seq <= 3; seq++) await step(id, seq)
    const atSnapshot = await blobOf(id)
    const snap = await post(id, 'snapshots', { name: 'before-dialog' })
    expect(snap.status, JSON.stringify(snap.data)).toBe(201)
    expect(snap.data).toMatchObject({ name: 'before-dialog', seq: 3, policy: WINDOW })
    const first4 = await step(id, 4)
    await step(id, 5)
    const back = await post(id, 'rollback', { snapshot: 'before-dialog' })
    expect(back.status, JSON.stringify(back.data)).toBe(200)
    expect(back.data.seq).toBe(3)
    expect(await blobOf(id)).toEqual(atSnapshot)
    const again4 = await step(id, 4)
    expect([...logitsOf(again4)]).toEqual([...logitsOf(first4)])
    expect(again4.memory.nextPosition).toBe(first4.memory.nextPosition)
    // The snapshot stays for another backtrack; a default name is chosen when none is given.
    const list = await client.call('GET', `/v1/sessions/${id}/snapshots`)
    expect(list.data.snapshots.map((s: { name: string }) => s.name)).toEqual(['before-dialog'])
    const auto = await post(id, 'snapshots')
    expect(auto.status).toBe(201)
    expect(auto.data.name).toMatch(/^seq-4\.\d+$/)
  })

  it('snapshot errors: duplicate 409, unknown 404, bad name 400, over the limit 409; deleting frees a slot', async () => {
    const id = await create()
    await step(id, 1)
    expect((await post(id, 'snapshots', { name: 'a' })).status).toBe(201)
    const dup = await post(id, 'snapshots', { name: 'a' })
    expect([dup.status, dup.data.code]).toEqual([409, 'snapshot_exists'])
    const unknown = await post(id, 'rollback', { snapshot: 'nope' })
    expect([unknown.status, unknown.data.code]).toEqual([404, 'unknown_snapshot'])
    const bad = await post(id, 'snapshots', { name: 'a b/c' })
    expect([bad.status, bad.data.code]).toEqual([400, 'invalid_request'])
    for (const name of ['.', '..', '...']) {
      const dots = await post(id, 'snapshots', { name }) // could be created, never addressed in a URL
      expect([dots.status, dots.data.code]).toEqual([400, 'invalid_request'])
    }
    expect((await post(id, 'snapshots', { name: '.a.' })).status).toBe(201)
    expect((await client.call('DELETE', `/v1/sessions/${id}/snapshots/.a.`)).status).toBe(200)
    const limit = Number(env.MAX_SNAPSHOTS_PER_SESSION ?? 8)
    for (let i = 1; i < limit; i++) expect((await post(id, 'snapshots', { name: `s${i}` })).status).toBe(201)
    const over = await post(id, 'snapshots', { name: 'one-more' })
    expect([over.status, over.data.code]).toEqual([409, 'snapshot_limit'])
    expect((await client.call('DELETE', `/v1/sessions/${id}/snapshots/a`)).status).toBe(200)
    expect((await client.call('DELETE', `/v1/sessions/${id}/snapshots/a`)).status).toBe(404)
    expect((await post(id, 'snapshots', { name: 'one-more' })).status).toBe(201)
  })

  it('fork: a new session with the same memory and seq; both continue identically and independently', async () => {
    const id = await create()
    for (let seq = 1; seq <= 3; seq++) await step(id, seq)
    await post(id, 'snapshots', { name: 'at-2-later' })
    const fork = await post(id, 'fork', {})
    expect(fork.status, JSON.stringify(fork.data)).toBe(201)
    const forkId = fork.data.id as string
    expect(forkId).not.toBe(id)
    expect(fork.data).toMatchObject({ seq: 3, policy: WINDOW, model: 'tiny-gqa' })
    const a = await step(id, 4)
    const b = await step(forkId, 4)
    expect([...logitsOf(b)]).toEqual([...logitsOf(a)])
    await step(forkId, 5)
    expect((await client.info(id)).data.seq).toBe(4)
    // From a snapshot: the snapshot's seq.
    const fromSnap = await post(id, 'fork', { snapshot: 'at-2-later' })
    expect(fromSnap.status).toBe(201)
    expect(fromSnap.data.seq).toBe(3)
    expect((await post(id, 'fork', { snapshot: 'missing' })).status).toBe(404)
    // Another tenant cannot fork it.
    const other = api((url, init) => exports.default.fetch(new Request(url, init)), undefined, 'dev-key-other-tenant-0000000000')
    expect((await other.call('POST', `/v1/sessions/${id}/fork`, {})).status).toBe(404)
  })

  it('policy change: a smaller window budget applies at the next step; old exports no longer import', async () => {
    const id = await create()
    for (let seq = 1; seq <= 3; seq++) await step(id, seq)
    const oldExport = await client.exportMemory(id)
    const patched = await client.call('PATCH', `/v1/sessions/${id}`, { policy: { name: 'window', params: { sinkTokens: 4, recentTokens: 16 } } })
    expect(patched.status, JSON.stringify(patched.data)).toBe(200)
    expect(patched.data.policy).toEqual({ name: 'window', params: { sinkTokens: 4, recentTokens: 16 } })
    expect(patched.data.seq).toBe(3)
    const next = await step(id, 4)
    expect(next.memory.tokensPerLayer.every((n: number) => n === 20)).toBe(true)
    const etag = (await client.info(id)).data.etag
    const imported = await client.importMemory(id, oldExport.data, etag)
    expect([imported.status, imported.data.code]).toEqual([422, 'policy_mismatch'])
    // A carried cache may become H2O (scores start at 0) and back.
    expect((await client.call('PATCH', `/v1/sessions/${id}`, { policy: { name: 'h2o', params: { budgetTokens: 24 } } })).status).toBe(200)
    expect((await step(id, 5)).memory.tokensPerLayer[0]).toBe(24)
  })

  it('policy change refused: a policy the model cannot serve or a bad parameter 400, carried ↔ TempoFit 409; memory untouched', async () => {
    const id = await create()
    await step(id, 1)
    const blob = await blobOf(id)
    const etag = (await client.info(id)).data.etag
    // tiny-gqa has no TempoFit layers: the policy itself is refused (400) before any memory check.
    const tempo = await client.call('PATCH', `/v1/sessions/${id}`, { policy: { name: 'tempofit', params: { frames: 3 } } })
    expect([tempo.status, tempo.data.code]).toEqual([400, 'invalid_policy'])
    const bad = await client.call('PATCH', `/v1/sessions/${id}`, { policy: { name: 'window', params: { recentTokens: -1 } } })
    expect([bad.status, bad.data.code]).toEqual([400, 'invalid_policy'])
    const unknown = await client.call('PATCH', `/v1/sessions/${id}`, { policy: { name: 'nope' } })
    expect(unknown.status).toBe(400)
    expect(await blobOf(id)).toEqual(blob)
    expect((await client.info(id)).data.etag).toBe(etag)
    // A TempoFit bank may change its size.
    const t = await create({ model: 'tiny-gqa-tempo', policy: { name: 'tempofit', params: { frames: 3 } } })
    for (let seq = 1; seq <= 4; seq++) await step(t, seq)
    const resized = await client.call('PATCH', `/v1/sessions/${t}`, { policy: { name: 'tempofit', params: { frames: 2 } } })
    expect(resized.status, JSON.stringify(resized.data)).toBe(200)
    const after = await step(t, 5)
    const frameTokens = texts.slice(3, 5).reduce((n, s) => n + new TextEncoder().encode(s).length, 0)
    expect(after.memory.tokensPerLayer[0]).toBe(frameTokens)
    const toCarried = await client.call('PATCH', `/v1/sessions/${t}`, { policy: WINDOW })
    expect([toCarried.status, toCarried.data.code]).toEqual([409, 'policy_incompatible'])
  })

  it('a GPU session whose host holds steps past the durable copy: snapshot, fork and policy change → 409 memory_not_durable', async () => {
    const id = await create()
    await step(id, 1)
    const stub = env.SESSIONS.get(env.SESSIONS.idFromName(`dev/${id}`))
    // What gpu-forward.ts stores for a forwarded step without a new durable copy (write-behind).
    await runInDurableObject(stub, (_o, state) => new SessionStore(state.storage).saveForwarded(2, new Uint8Array([0x80]), 1))
    for (const [route, body] of [['snapshots', { name: 'x' }], ['fork', {}]] as const) {
      const r = await post(id, route, body)
      expect([r.status, r.data.code, r.data.durableSeq, r.data.seq]).toEqual([409, 'memory_not_durable', 1, 2])
    }
    const patch = await client.call('PATCH', `/v1/sessions/${id}`, { policy: { name: 'window', params: { recentTokens: 8 } } })
    expect([patch.status, patch.data.code]).toEqual([409, 'memory_not_durable'])
  })

  it('idle TTL: a session asks for a shorter one (not longer); it expires by alarm and frees its quota slot', async () => {
    const tooLong = await client.createSession({ policy: WINDOW, idleTtlSeconds: 10 * 86_400 })
    expect([tooLong.status, tooLong.data.code]).toEqual([400, 'invalid_request'])
    const id = await create({ policy: WINDOW, idleTtlSeconds: 1 })
    expect((await client.info(id)).data.idleTtlSeconds).toBe(1)
    await step(id, 1)
    const stub = env.SESSIONS.get(env.SESSIONS.idFromName(`dev/${id}`))
    const tenants = env.TENANTS!.get(env.TENANTS!.idFromName('dev'))
    const live = await tenants.sessions()
    // Run early (not due yet): the session stays.
    await runDurableObjectAlarm(stub)
    expect((await client.info(id)).status).toBe(200)
    await new Promise((r) => setTimeout(r, 1_300))
    await runDurableObjectAlarm(stub) // false if workerd already ran it at its time
    const gone = await client.info(id)
    expect([gone.status, gone.data.code]).toEqual([404, 'unknown_session'])
    expect(await tenants.sessions()).toBe(live - 1)
  })

  it('idle TTL: each request postpones expiry', async () => {
    const id = await create({ policy: WINDOW, idleTtlSeconds: 2 })
    const stub = env.SESSIONS.get(env.SESSIONS.idFromName(`dev/${id}`))
    await new Promise((r) => setTimeout(r, 1_200))
    await step(id, 1)
    await new Promise((r) => setTimeout(r, 1_200)) // 2.4 s after creation, 1.2 s after the step
    await runDurableObjectAlarm(stub)
    expect((await client.info(id)).status).toBe(200)
  })
})
