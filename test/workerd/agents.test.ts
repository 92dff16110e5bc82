/**
 * The trained agent models through the Worker inside workerd: a robot episode and a GUI episode run
 * step by step over HTTP (msgpack, frames as bytes), and every step's action equals the engine run
 * in-process on the same observations (so the HTTP, Durable Object and persistence path changes
 * nothing), with the memory growing by one frame of prefix tokens per step.
 */
import { exports } from 'cloudflare:workers'
import { describe, expect, it } from 'vitest'
import { RobotEnv } from '../../sim/robot/index.ts'
import { GuiEnv } from '../../sim/gui/index.ts'
import { api } from '../../sim/client.ts'
import { adapterOf, manifestOf, runtimeOf } from '../../worker/models.ts'
import { initialMemory, policyFor, runStep } from '../../worker/engine.ts'

const client = api((url, init) => exports.default.fetch(new Request(url, init)))
const limits = { maxPrefixTokens: 4096 }

async function direct(model: string) {
  const m = manifestOf(model)
  const policy = policyFor(m, 'full', {})
  let memory = initialMemory(m, policy)
  let seq = 0
  return async (observation: Record<string, unknown>) => {
    const out = await runStep(runtimeOf(model), memory, policy, { seq: ++seq, observation }, limits, adapterOf(model, 4096))
    memory = out.memory
    return out.action
  }
}

describe('agent models in workerd', () => {
  it('robot-carried: a hidden-target episode over HTTP matches the in-process engine', async () => {
    const id = (await client.createSession({ model: 'robot-carried', policy: { name: 'full' } })).data.id
    const local = await direct('robot-carried')
    const env = new RobotEnv()
    let obs = env.reset('hidden-target', 3)
    const perFrame = manifestOf('robot-carried').encoder!.cameras.reduce((n, c) => n + c.visualTokens, 1)
    for (let seq = 1; seq <= 4; seq++) {
      const observation = { images: obs.frames.map((f) => ({ width: f.width, height: f.height, data: f.data })), proprio: [...obs.proprio], instruction: obs.instruction }
      const r = await client.step(id, seq, observation, undefined, true)
      expect(r.status, JSON.stringify(r.data)).toBe(200)
      expect(r.data.action).toHaveLength(4)
      expect(r.data.action).toEqual(await local(observation))
      const tokens = r.data.memory.tokensPerLayer[0]
      expect(tokens).toBe(seq * (perFrame + new TextEncoder().encode(obs.instruction).length))
      obs = env.step(r.data.action)
      if ((obs as { done?: boolean }).done) break
    }
  })

  it('gui-carried: screenshots as PNG bytes; the action is a GUI action and matches the engine', async () => {
    const id = (await client.createSession({ model: 'gui-carried', policy: { name: 'full' } })).data.id
    const local = await direct('gui-carried')
    const env = new GuiEnv()
    let obs = env.reset('click-button', 5)
    for (let seq = 1; seq <= 2 && !env.done; seq++) {
      const observation = { image: obs.png(), instruction: obs.instruction }
      const r = await client.step(id, seq, observation, undefined, true)
      expect(r.status, JSON.stringify(r.data)).toBe(200)
      expect(['click', 'type', 'scroll', 'done']).toContain(r.data.action.type)
      expect(r.data.action).toEqual(await local(observation))
      obs = env.step(r.data.action)
    }
  })

  it('refuses a frame of the wrong size with a 400 naming the camera', async () => {
    const id = (await client.createSession({ model: 'robot-carried', policy: { name: 'full' } })).data.id
    const bad = { images: [{ width: 8, height: 8, data: new Uint8Array(192) }, { width: 16, height: 16, data: new Uint8Array(768) }], proprio: [0, 0, 0, 0, 0], instruction: 'go' }
    const r = await client.step(id, 1, bad, undefined, true)
    expect(r.status).toBe(400)
    expect(r.data.code).toBe('invalid_image')
    expect(r.data.detail).toMatch(/camera 'top' must be 32×32 px, got 8×8/)
  })
})

describe('agent input limits', () => {
  it('refuses a PNG whose IHDR declares a huge image before inflating it, and out-of-range proprio', async () => {
    const gui = (await client.createSession({ model: 'gui-carried', policy: { name: 'full' } })).data.id
    const png = new GuiEnv().reset('click-button', 1).png().slice()
    new DataView(png.buffer).setUint32(16, 50_000)
    new DataView(png.buffer).setUint32(20, 50_000)
    const t0 = Date.now()
    const r = await client.step(gui, 1, { image: png, instruction: 'x' }, undefined, true)
    expect(r.status).toBe(400)
    expect(r.data.detail).toMatch(/must be 128×96 px, got 50000×50000/)
    expect(Date.now() - t0).toBeLessThan(2000)
    const robot = (await client.createSession({ model: 'robot-carried', policy: { name: 'full' } })).data.id
    const o = new RobotEnv().reset('reach-red', 1)
    const frames = o.frames.map((f) => ({ width: f.width, height: f.height, data: f.data }))
    const p = await client.step(robot, 1, { images: frames, proprio: [1e308, 0, 0, 0, 0], instruction: o.instruction }, undefined, true)
    expect(p.status).toBe(400)
    expect(p.data.code).toBe('invalid_observation')
  })
})
