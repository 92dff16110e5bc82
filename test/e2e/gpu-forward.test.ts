/**
 * End to end: `wrangler dev` forwards a GPU session's steps to a GPU host on loopback (the Node
 * host on its wasm backend: CI has no GPU). Steps give the same logits as a session run in the
 * Worker; with the host killed the step falls back to the Worker from the last durable state and
 * says so; with the host back (same durable directory, now behind the Durable Object) it is
 * re-seeded and the session continues — nothing lost beyond `durableSeq`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { api, logitsOf, relErr } from '../../sim/client.ts'
import { freePort } from '../../sim/wrangler.ts'
import { startGpuHost, startWranglerWith, type Child } from './gpu-servers.ts'

const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-e2e-gpu-'))
const SECRET = 'e2e-gpu-host-secret-0123456789'
let host: Child | undefined
let worker: Child | undefined
afterAll(async () => {
  await host?.kill()
  await worker?.kill()
  rmSync(dir, { recursive: true, force: true })
})

const texts = Array.from({ length: 6 }, (_, i) => `obs ${i + 1}: the code is ${(i * 7919) % 1000}, remember it`)
const WINDOW = { name: 'window', params: { sinkTokens: 4, recentTokens: 48 } }

describe('GPU forwarding through wrangler dev', () => {
  it('forwards steps, falls back when the host is down, re-seeds it when it returns', async () => {
    const port = await freePort()
    host = await startGpuHost(port, path.join(dir, 'host'), SECRET)
    worker = await startWranglerWith(path.join(dir, 'wrangler'), { GPU_HOST_URL: host.url, GPU_HOST_SECRET: SECRET, GPU_FALLBACK: 'wasm' })
    const client = api(fetch, worker.url)
    const gpu = await client.createSession({ policy: WINDOW, backend: 'gpu' })
    expect(gpu.status, JSON.stringify(gpu.data)).toBe(201)
    const ref = await client.createSession({ policy: WINDOW })
    expect((await client.createSession({ backend: 'tpu' })).status).toBe(400)
    const step = (id: string, seq: number, msgpack = false) => client.step(id, seq, { text: texts[seq - 1] }, { returnLogits: true }, msgpack)
    const refs = []
    for (let seq = 1; seq <= texts.length; seq++) refs.push((await step(ref.data.id, seq)).data)

    const replies = []
    for (let seq = 1; seq <= 3; seq++) {
      const r = await step(gpu.data.id, seq, seq === 2)
      expect(r.status, `${JSON.stringify(r.data)}\n${host.log()}`).toBe(200)
      expect(r.data).toMatchObject({ seq, backend: 'wasm', durableSeq: seq, memory: { durableSeq: seq, etag: `"${seq}.${seq}"` } })
      expect(r.data.fallback).toBeUndefined()
      expect(relErr(logitsOf(r.data), logitsOf(refs[seq - 1]))).toBeLessThan(1e-5)
      replies.push(r.data)
    }
    expect((await step(gpu.data.id, 3)).data).toEqual(replies[2]) // a retry replays

    await host.kill()
    const fb = await step(gpu.data.id, 4)
    expect(fb.status, JSON.stringify(fb.data)).toBe(200)
    expect(fb.data.fallback).toMatchObject({ from: 'gpu', restoredFromSeq: 3, lostSteps: 0 })
    expect(fb.data.memory.durableSeq).toBe(4)
    expect(relErr(logitsOf(fb.data), logitsOf(refs[3]))).toBeLessThan(1e-5)

    // The host returns with its durable copy of step 3: the Durable Object (at step 4) re-seeds it.
    host = await startGpuHost(port, path.join(dir, 'host'), SECRET)
    for (let seq = 5; seq <= 6; seq++) {
      const r = await step(gpu.data.id, seq)
      expect(r.status, `${JSON.stringify(r.data)}\n${host.log()}`).toBe(200)
      expect(r.data.fallback).toBeUndefined()
      expect(r.data.restored).toBeUndefined()
      expect(r.data.durableSeq).toBe(seq)
      expect(relErr(logitsOf(r.data), logitsOf(refs[seq - 1]))).toBeLessThan(1e-5)
    }
    const info = await client.info(gpu.data.id)
    expect(info.data).toMatchObject({ seq: 6, memory: { durableSeq: 6, tokensPerLayer: refs[5].memory.tokensPerLayer } })
  })
})
