/**
 * The optional R2 offload of large memory blobs (`worker/memory-offload.ts`), with miniflare's
 * local R2 bucket `MEMORY_BUCKET` (wrangler.toml, vitest.config.ts). The threshold (8 MiB) keeps every
 * other test's memory in SQLite; here `MEMORY_OFFLOAD_BYTES` is lowered to 1,024 bytes on the live
 * object's env (`runInDurableObject`, as isolate-budget.test.ts does; it is the env the test reads
 * too) and restored after each test.
 * Checked: a memory over the threshold is stored in R2 (a pointer row, no chunks) and the session
 * continues with identical logits after the object is evicted; the previous object is deleted after
 * the next write; a corrupted or missing object answers 500 `stored_memory_corrupt` and changes
 * nothing; a failed put answers 503 and changes nothing; delete removes the objects; a memory at or
 * below the threshold, or any memory without the binding, never reaches R2.
 */
import { env, evictDurableObject, runInDurableObject } from 'cloudflare:test'
import { exports } from 'cloudflare:workers'
import { afterEach, describe, expect, it } from 'vitest'
import { api, logitsOf } from '../../sim/client.ts'
import type { SessionObject } from '../../worker/session-object.ts'
import { SessionStore } from '../../worker/storage.ts'
import { sessionPrefix, type MemoryPointer } from '../../worker/memory-offload.ts'

const client = api((url, init) => exports.default.fetch(new Request(url, init)))
const stubOf = (id: string) => env.SESSIONS.get(env.SESSIONS.idFromName(`dev/${id}`))
const texts = Array.from({ length: 6 }, (_, i) => `step ${i + 1}: open the ${['menu', 'form', 'list'][i % 3]}`)

type ObjectEnv = Record<string, unknown>
const envOf = (o: SessionObject) => (o as unknown as { env: ObjectEnv }).env

/** Sets vars/bindings on the object's env (undefined: the configured one); restored after the test. */
const restores: (() => Promise<void>)[] = []
async function setEnv(id: string, values: ObjectEnv) {
  const previous = await runInDurableObject(stubOf(id), (o: SessionObject) => {
    const e = envOf(o)
    const was = Object.fromEntries(Object.keys(values).map((k) => [k, e[k]]))
    Object.assign(e, values)
    return was
  })
  restores.unshift(async () => void (await runInDurableObject(stubOf(id), (o: SessionObject) => void Object.assign(envOf(o), previous))))
}
afterEach(async () => {
  for (const r of restores.splice(0)) await r()
})

async function stored(id: string): Promise<{ pointer: MemoryPointer | null; chunks: number; seq: number; generation: number }> {
  return runInDurableObject(stubOf(id), (_o, state) => {
    const store = new SessionStore(state.storage)
    const chunks = state.storage.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM memory_chunks`).one().n
    return { pointer: store.memoryPointer(), chunks, seq: store.seq(), generation: store.generation() }
  })
}

async function keysOf(id: string): Promise<string[]> {
  return (await env.MEMORY_BUCKET!.list({ prefix: sessionPrefix('dev', id) })).objects.map((o) => o.key)
}

async function step(id: string, seq: number) {
  const r = await client.step(id, seq, { text: texts[seq - 1] }, { returnLogits: true })
  expect(r.status, JSON.stringify(r.data)).toBe(200)
  return r.data
}

describe('memory offload to R2', () => {
  it('has the bucket bound and the default threshold (8 MiB) in the test env', () => {
    expect(env.MEMORY_BUCKET).toBeDefined()
    expect(env.MEMORY_OFFLOAD_BYTES).toBe(String(8 << 20))
  })

  it('a memory over the threshold goes to R2, the previous object is deleted after the next write, and the session continues with identical logits after eviction', async () => {
    const ref = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    const id = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    const expected = []
    for (let seq = 1; seq <= 5; seq++) expected.push(await step(ref, seq))

    await setEnv(id, { MEMORY_OFFLOAD_BYTES: '1024' })
    await step(id, 1)
    await step(id, 2)
    const first = await stored(id)
    expect(first.pointer).not.toBeNull()
    expect(first.chunks).toBe(0)
    expect(first.pointer!.key.startsWith(sessionPrefix('dev', id))).toBe(true)
    expect(first.pointer!.bytes).toBeGreaterThan(1024)
    const head = await env.MEMORY_BUCKET!.head(first.pointer!.key)
    expect(head?.size).toBe(first.pointer!.bytes)
    expect((await client.info(id)).data.memory.bytes).toBe(first.pointer!.bytes)

    await step(id, 3)
    const second = await stored(id)
    expect(second.pointer!.key).not.toBe(first.pointer!.key)
    expect(await env.MEMORY_BUCKET!.head(first.pointer!.key)).toBeNull() // deleted after the commit
    expect(await keysOf(id)).toEqual([second.pointer!.key])

    // Export reads the blob back from R2 (+ the 32-byte HMAC tag).
    const exported = await client.exportMemory(id)
    expect(exported.status).toBe(200)
    expect((exported.data as Uint8Array).length).toBe(second.pointer!.bytes + 32)

    await step(id, 4)
    await evictDurableObject(stubOf(id)) // no hot memory: step 5 must load the blob from R2
    await setEnv(id, { MEMORY_OFFLOAD_BYTES: '1024' })
    const after = await step(id, 5)
    expect(after.memory.nextPosition).toBe(expected[4].memory.nextPosition)
    expect(after.memory.tokensPerLayer).toEqual(expected[4].memory.tokensPerLayer)
    expect([...logitsOf(after)]).toEqual([...logitsOf(expected[4])])
    expect((await keysOf(id)).length).toBe(1)

    // The reference session stayed under the default threshold: nothing of it in R2.
    const refStored = await stored(ref)
    expect(refStored.pointer).toBeNull()
    expect(refStored.chunks).toBeGreaterThan(0)
    expect(await keysOf(ref)).toEqual([])
  })

  it('a corrupted or missing R2 object → 500 stored_memory_corrupt, nothing stored changes; the session goes on once it is restored', async () => {
    const id = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    await setEnv(id, { MEMORY_OFFLOAD_BYTES: '1024' })
    await step(id, 1)
    await step(id, 2)
    const before = await stored(id)
    const key = before.pointer!.key
    const good = new Uint8Array(await (await env.MEMORY_BUCKET!.get(key))!.arrayBuffer())
    const flipped = good.slice()
    flipped[flipped.length >> 1] ^= 0xff
    for (const corrupt of [flipped, good.subarray(0, good.length - 1), null]) {
      if (corrupt) await env.MEMORY_BUCKET!.put(key, corrupt)
      else await env.MEMORY_BUCKET!.delete(key)
      await evictDurableObject(stubOf(id)) // drop the hot copy
      await setEnv(id, { MEMORY_OFFLOAD_BYTES: '1024' })
      for (const r of [await client.step(id, 3, { text: texts[2] }), await client.exportMemory(id), await client.info(id)]) {
        expect(r.status).toBe(500)
        expect(r.type).toBe('application/problem+json')
        expect(r.data.code).toBe('stored_memory_corrupt')
        expect(r.data.detail).toMatch(corrupt === null ? /missing/ : corrupt.length !== good.length ? /holds \d+ bytes/ : /SHA-256/)
      }
      expect(await stored(id)).toEqual(before)
    }
    await env.MEMORY_BUCKET!.put(key, good)
    await step(id, 3)
  })

  it('a failed R2 put → 503 memory_store_unavailable and nothing changes; the retry succeeds', async () => {
    const id = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    await step(id, 1)
    const before = await stored(id)
    const exported = (await client.exportMemory(id)).data
    const bucket = env.MEMORY_BUCKET! // the object's env is the test's env: keep the real binding
    const failing = new Proxy(bucket, {
      get: (target, prop) => (prop === 'put' ? () => Promise.reject(new Error('injected R2 failure')) : Reflect.get(target, prop).bind(target)),
    })
    await setEnv(id, { MEMORY_OFFLOAD_BYTES: '1024', MEMORY_BUCKET: failing })
    const r = await client.step(id, 2, { text: texts[1] })
    expect(r.status).toBe(503)
    expect(r.data.code).toBe('memory_store_unavailable')
    expect(r.data.detail).toMatch(/injected R2 failure.*nothing changed/)
    expect(await stored(id)).toEqual(before)
    expect((await client.exportMemory(id)).data).toEqual(exported)
    expect(await keysOf(id)).toEqual([])
    await setEnv(id, { MEMORY_BUCKET: bucket })
    await step(id, 2)
    expect((await stored(id)).pointer).not.toBeNull()
  })

  it('deleting the session removes its R2 objects', async () => {
    const id = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    await setEnv(id, { MEMORY_OFFLOAD_BYTES: '1024' })
    await step(id, 1)
    expect((await keysOf(id)).length).toBe(1)
    await env.MEMORY_BUCKET!.put(`${sessionPrefix('dev', id)}orphan`, new Uint8Array([1])) // e.g. a write whose transaction did not commit
    const r = await client.call('DELETE', `/v1/sessions/${id}`)
    expect(r.status).toBe(200)
    expect(await keysOf(id)).toEqual([])
  })

  it('without the binding a memory over the threshold stays in SQLite chunks', async () => {
    const id = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    await setEnv(id, { MEMORY_OFFLOAD_BYTES: '1024', MEMORY_BUCKET: undefined })
    await step(id, 1)
    await step(id, 2)
    const { pointer, chunks } = await stored(id)
    expect(pointer).toBeNull()
    expect(chunks).toBe(1)
    await evictDurableObject(stubOf(id))
    await step(id, 3)
  })

  it('at or below the threshold nothing goes to R2', async () => {
    const id = (await client.createSession({ policy: { name: 'full' } })).data.id as string
    await step(id, 1)
    const { pointer, chunks } = await stored(id)
    await setEnv(id, { MEMORY_OFFLOAD_BYTES: String(1 << 30) })
    await step(id, 2)
    expect(pointer).toBeNull()
    expect(chunks).toBeGreaterThan(0)
    expect((await stored(id)).pointer).toBeNull()
    expect(await keysOf(id)).toEqual([])
  })
})
