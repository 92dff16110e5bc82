/**
 * End to end against `wrangler dev`: steps run, the process is killed (SIGKILL), started again on
 * the same on-disk storage, and the session continues with the next seq and the same results as
 * a session that was never interrupted.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { api, logitsOf } from '../../sim/client.ts'
import { startWrangler, type Wrangler } from '../../sim/wrangler.ts'

const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-e2e-'))
let server: Wrangler | undefined
afterAll(async () => {
  await server?.kill()
  rmSync(dir, { recursive: true, force: true })
})

const texts = Array.from({ length: 8 }, (_, i) => `obs ${i + 1}: the code is ${(i * 7919) % 1000}`)

describe('wrangler dev restart', () => {
  it('keeps a session across a kill and restart of wrangler dev', async () => {
    server = await startWrangler(dir)
    let client = api(fetch, server.url)
    const created = await client.createSession({ policy: { name: 'window', params: { sinkTokens: 4, recentTokens: 48 } } })
    expect(created.status, JSON.stringify(created.data)).toBe(201)
    const id = created.data.id as string
    const first = []
    for (let seq = 1; seq <= 5; seq++) {
      const r = await client.step(id, seq, { text: texts[seq - 1] }, { returnLogits: true }, seq % 2 === 0)
      expect(r.status, JSON.stringify(r.data)).toBe(200)
      first.push(r.data)
    }
    await server.kill()

    server = await startWrangler(dir)
    client = api(fetch, server.url)
    const info = await client.info(id)
    expect(info.status).toBe(200)
    expect(info.data.seq).toBe(5)
    expect(info.data.memory.nextPosition).toBe(first[4].memory.nextPosition)
    // A retry of the last seq after the restart replays the stored reply without running.
    const replay = await client.step(id, 5, { text: texts[4] }, { returnLogits: true })
    expect(replay.data).toEqual(first[4])
    const resumed = []
    for (let seq = 6; seq <= 8; seq++) {
      const r = await client.step(id, seq, { text: texts[seq - 1] }, { returnLogits: true })
      expect(r.status, JSON.stringify(r.data)).toBe(200)
      resumed.push(r.data)
    }

    // The same 8 steps in one uninterrupted session.
    const ref = (await client.createSession({ policy: { name: 'window', params: { sinkTokens: 4, recentTokens: 48 } } })).data.id
    const straight = []
    for (let seq = 1; seq <= 8; seq++) straight.push((await client.step(ref, seq, { text: texts[seq - 1] }, { returnLogits: true })).data)
    for (let i = 0; i < 3; i++) {
      expect(resumed[i].memory.nextPosition).toBe(straight[5 + i].memory.nextPosition)
      expect(resumed[i].memory.tokensPerLayer).toEqual(straight[5 + i].memory.tokensPerLayer)
      expect([...logitsOf(resumed[i])]).toEqual([...logitsOf(straight[5 + i])])
      expect(resumed[i].action).toEqual(straight[5 + i].action)
    }
    // The window policy evicted: 8 prefixes are longer than 4 sinks + 48 recent tokens.
    expect(straight[7].memory.tokensPerLayer[0]).toBe(52)
    expect(straight[7].memory.nextPosition).toBe(texts.reduce((n, t) => n + t.length, 0))
  })
})
