/**
 * The TypeScript client (`clients/ts`) against `wrangler dev`: msgpack and JSON give the same
 * logits, a resent seq replays the stored reply, problems arrive as typed exceptions, lifecycle
 * calls through `Session`, memory export/import with the ETag, and the control loop driving the
 * robot simulator at 10 Hz.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Conflict, InvalidRequest, NotFound, PreconditionFailed, StepkvClient, logitsOf, runControlLoop, type TickCommand } from '../../clients/ts/index.ts'
import { DEV_KEY } from '../../sim/client.ts'
import { RobotEnv, type Action } from '../../sim/robot/index.ts'
import { startWrangler, type Wrangler } from '../../sim/wrangler.ts'
import { formatLatency, measureLatency } from '../../cli/latency.ts'

const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-ts-client-'))
let server: Wrangler
let kv: StepkvClient
beforeAll(async () => {
  server = await startWrangler(dir)
  kv = new StepkvClient({ baseUrl: server.url, apiKey: DEV_KEY })
})
afterAll(async () => {
  await server?.kill()
  rmSync(dir, { recursive: true, force: true })
})

const WINDOW = { name: 'window', params: { sinkTokens: 4, recentTokens: 48 } }

describe('TypeScript client against wrangler dev', () => {
  it('msgpack and JSON sessions give the same logits; a resent seq replays the stored reply', async () => {
    const json = new StepkvClient({ baseUrl: server.url, apiKey: DEV_KEY, format: 'json' })
    const a = await kv.open({ policy: WINDOW })
    const b = await json.open({ policy: WINDOW })
    for (const text of ['open the settings', 'toggle wifi', 'press back']) {
      const ra = await a.step({ text }, { returnLogits: true })
      const rb = await b.step({ text }, { returnLogits: true })
      expect([...logitsOf(ra)!]).toEqual([...logitsOf(rb)!])
      expect(ra.action).toEqual(rb.action)
    }
    expect(a.seq).toBe(3)
    const again = await kv.step(a.id, 3, { text: 'anything: not run' })
    const info = await kv.info(a.id)
    expect(again.memory.etag).toBe(info.etag)
    expect(info.seq).toBe(3)
  })

  it('problems arrive as typed exceptions', async () => {
    const s = await kv.open({ policy: WINDOW })
    await s.step({ text: 'one' })
    const conflict = await kv.step(s.id, 5, { text: 'x' }).catch((e) => e)
    expect(conflict).toBeInstanceOf(Conflict)
    expect([conflict.code, conflict.lastSeq]).toEqual(['seq_conflict', 1])
    expect(await kv.info('s_' + 'f'.repeat(32)).catch((e) => e)).toBeInstanceOf(NotFound)
    const bad = await kv.createSession({ policy: { name: 'window', params: { recentTokens: -3 } } }).catch((e) => e)
    expect(bad).toBeInstanceOf(InvalidRequest)
    expect(bad.code).toBe('invalid_policy')
    const { blob } = await kv.exportMemory(s.id)
    await s.step({ text: 'two' })
    const stale = await kv.importMemory(s.id, blob, '"1.1"').catch((e) => e)
    expect(stale).toBeInstanceOf(PreconditionFailed)
    expect(stale.etag).toBe(s.etag)
    // With the current ETag the import rolls the session back to seq 1.
    expect((await kv.importMemory(s.id, blob, s.etag)).seq).toBe(1)
  })

  it('lifecycle through Session: snapshot, rollback, fork, reconfigure, reset, delete', async () => {
    const s = await kv.open({ policy: WINDOW, idleTtlSeconds: 600 })
    expect(s.info.idleTtlSeconds).toBe(600)
    await s.step({ text: 'screen 1' })
    await s.step({ text: 'screen 2' })
    expect((await s.snapshot('two')).seq).toBe(2)
    const third = await s.step({ text: 'screen 3' }, { returnLogits: true })
    await s.rollback('two')
    expect(s.seq).toBe(2)
    const redo = await s.step({ text: 'screen 3' }, { returnLogits: true })
    expect([...logitsOf(redo)!]).toEqual([...logitsOf(third)!])
    const f = await s.fork('two')
    expect([f.seq, f.id === s.id]).toEqual([2, false])
    expect((await s.reconfigure({ name: 'window', params: { sinkTokens: 4, recentTokens: 8 } })).policy.params.recentTokens).toBe(8)
    expect((await s.step({ text: 'screen 4' })).memory.tokensPerLayer[0]).toBe(12)
    expect((await kv.snapshots(s.id)).snapshots.map((x) => x.name)).toEqual(['two'])
    await s.reset()
    expect(s.seq).toBe(0)
    expect((await s.step({ text: 'new episode' })).seq).toBe(1)
    await f.delete()
    await s.delete()
    expect(await kv.info(s.id).catch((e) => e)).toBeInstanceOf(NotFound)
  })

  it('WebSocket steps: the same replies as HTTP, typed problem rejections, numbering continues', async () => {
    const http = await kv.open({ policy: WINDOW })
    const viaWs = await kv.open({ policy: WINDOW })
    const socket = await viaWs.connect()
    for (const text of ['one', 'two', 'three']) {
      const a = await http.step({ text }, { returnLogits: true })
      const b = await socket.step({ text }, { returnLogits: true })
      expect([...logitsOf(b)!]).toEqual([...logitsOf(a)!])
      expect(b.memory).toEqual(a.memory)
    }
    expect(socket.seq).toBe(3)
    const conflict = await socket.send(9, { text: 'x' }).catch((e) => e)
    expect(conflict).toBeInstanceOf(Conflict)
    expect((await socket.step({ text: 'four' })).seq).toBe(4) // the connection survived the problem
    socket.close()
    await viaWs.resync()
    expect(viaWs.seq).toBe(4)
    await expect(kv.connect('s_' + '0'.repeat(32), 0)).rejects.toThrow(/refused or failed/)
  })

  it('stepkv latency measures both transports on the same steps', async () => {
    const r = await measureLatency({ url: server.url, apiKey: DEV_KEY, steps: 6, warmup: 1, model: 'tiny-gqa' })
    expect(r.steps).toBe(6)
    for (const t of [r.http, r.websocket]) expect(t.minMs).toBeGreaterThan(0)
    expect(r.p50Ratio).toBeCloseTo(r.websocket.p50Ms / r.http.p50Ms, 1)
    expect(formatLatency(r)).toContain('| WebSocket frame (msgpack) |')
  })

  it('control loop: the robot simulator at 10 Hz, one command per tick, deadline misses counted', async () => {
    const s = await kv.open({ model: 'robot-carried', policy: { name: 'window', params: { sinkTokens: 0, recentTokens: 162 } } })
    const env = new RobotEnv()
    let obs = env.reset('reach-red', 7)
    let grip = 0
    const ran: TickCommand<Action>[] = []
    const stats = await runControlLoop<object, Action>({
      rateHz: 10,
      maxTicks: 12,
      observe: () =>
        env.done
          ? undefined
          : { images: obs.frames.map((f) => ({ width: f.width, height: f.height, data: f.data })), proprio: [...obs.proprio], instruction: obs.instruction },
      step: (o) => s.step(o),
      act: (c) => {
        ran.push(c)
        const a = c.action ?? { dx: 0, dy: 0, grip }
        grip = a.grip >= 0.5 ? 1 : 0
        if (!env.done) obs = env.step(a)
      },
    })
    expect(ran.map((c) => c.tick)).toEqual(Array.from({ length: stats.ticks }, (_, i) => i))
    expect(stats.ticks).toBe(Math.min(12, env.world.tick))
    expect(stats.steps).toBe(s.seq)
    expect(stats.steps + stats.heldTicks).toBeGreaterThanOrEqual(stats.ticks)
    expect(stats.deadlineMisses).toBe(stats.latencyMs.filter((l) => l > 100).length)
    expect(stats.p50Ms).toBeGreaterThan(0)
    await s.delete()
  })
})
