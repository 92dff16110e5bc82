/**
 * The GPU host (gpu/host-app.ts + gpu/host-sessions.ts) on the wasm backend, through its Hono app:
 * the resident K/V path gives the same logits as the Worker's engine, the durable copy is written
 * every K steps and `durableSeq` says so, sessions past the cap are evicted and come back from the
 * durable copy unchanged, a lost runtime is recovered from (ORT sessions recreated, memory
 * restored, the step retried once), forwarding state tags and seeding, and bad input is a 4xx
 * problem.
 */
import { describe, expect, it, vi } from 'vitest'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { pack, unpack } from 'msgpackr'
import { api, logitsOf, relErr } from '../../sim/client.ts'
import { FileStore, MemoryStore } from '../../gpu/durable.ts'
import { hostApp, HOST_SECRET_HEADER } from '../../gpu/host-app.ts'
import { HostSessions } from '../../gpu/host-sessions.ts'
import { modelsFrom, defaultModelsDir } from '../../gpu/host.ts'
import { nodeModelSource } from '../../gpu/node-models.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { ModelRuntime } from '../../gpu/session.ts'
import { selectBackend } from '../../gpu/webgpu.ts'
import { initialMemory, policyFor, runStep } from '../../worker/engine.ts'
import { decodeMemory } from '../../memory/codec.ts'
import { capacityFor, materialize, residentFrom, type ResidentMemory } from '../../gpu/resident.ts'
import { bucketOf } from '../../gpu/static-step.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { roundTrip, type StorageOptions } from '../../memory/storage.ts'
import { f16BitsToF32, f32ToF16Bits } from '../../memory/float16.ts'
import { adapterFor } from '../../agents/index.ts'
import { nodeEncoderSource } from '../../gpu/node-models.ts'
import { RobotEnv } from '../../sim/robot/index.ts'
import { unpackBody } from '../../worker/body.ts'

const SECRET = 'test-secret-0123456789abcdef'
const texts = Array.from({ length: 8 }, (_, i) => `step ${i + 1}: the code is ${(i * 7919) % 1000} and more text`)
const WINDOW = { name: 'window', params: { sinkTokens: 4, recentTokens: 40 } }
const H2O = { name: 'h2o', params: { budgetTokens: 40 } }
const SNAPKV = { name: 'snapkv', params: { budgetTokens: 40, observationWindow: 8 } }

async function host(opts: { durableEvery?: number; maxHot?: number; resident?: boolean; fixedCapacity?: number; capture?: boolean; captureTempo?: boolean; float16Resident?: boolean } = {}) {
  const choice = await selectBackend('wasm')
  const store = new MemoryStore()
  const sessions = new HostSessions({ choice, store, model: modelsFrom(defaultModelsDir()), ...opts })
  const app = hostApp({ sessions, secret: SECRET })
  const fetcher = (url: string, init?: RequestInit) =>
    Promise.resolve(app.request(url, { ...init, headers: { ...(init?.headers as Record<string, string>), [HOST_SECRET_HEADER]: SECRET } }))
  return { sessions, store, app, client: api(fetcher, 'http://host') }
}

/** The Worker engine's logits for the same steps (round trip, no host); `memories` gets each
 * step's memory when given. */
async function reference(policy: { name: string; params: Record<string, number> } = WINDOW, n = texts.length, memories?: SessionMemory[], storage: StorageOptions = { dtype: 'float32' }): Promise<Float32Array[]> {
  const runtime = ModelRuntime.for(ortForNode(), nodeModelSource('tiny-gqa'))
  const p = policyFor(runtime.manifest, policy.name, policy.params)
  let memory = initialMemory(runtime.manifest, p)
  const out = []
  for (let seq = 1; seq <= n; seq++) {
    const r = await runStep(runtime, memory, p, { seq, observation: { text: texts[seq - 1] }, options: { returnLogits: true } }, { maxPrefixTokens: 4096 })
    memory = roundTrip(r.memory, storage) // what the Worker's engine keeps (and a reload gives)
    memories?.push(memory)
    out.push(r.logits!.data)
  }
  return out
}

/** `n` observations of one robot episode under a constant action: raw RGB8 frames, proprio, instruction. */
function robotObservations(task: string, seed: number, n: number, action: { dx: number; dy: number; grip: number }) {
  const env = new RobotEnv()
  let o = env.reset(task, seed)
  const out = []
  for (let t = 0; t < n; t++) {
    out.push({ images: o.frames.map((f) => ({ width: f.width, height: f.height, data: f.data })), proprio: [...o.proprio], instruction: o.instruction })
    o = env.step(action)
  }
  return out
}

/** The Worker engine's logits and memory after each of `observations` (the model with its encoder). */
async function engineSteps(model: string, spec: { name: string; params: Record<string, number> }, observations: Record<string, unknown>[], storage: StorageOptions = { dtype: 'float32' }) {
  const src = nodeModelSource(model)
  const runtime = ModelRuntime.for(ortForNode(), src)
  const adapter = adapterFor(src.manifest, 4096, ModelRuntime.for(ortForNode(), nodeEncoderSource(model)))
  const policy = policyFor(src.manifest, spec.name, spec.params)
  let memory = initialMemory(src.manifest, policy)
  const out: { logits: Float32Array; memory: SessionMemory }[] = []
  for (const [i, observation] of observations.entries()) {
    const r = await runStep(runtime, memory, policy, { seq: i + 1, observation, options: { returnLogits: true } }, { maxPrefixTokens: 4096 }, adapter)
    memory = roundTrip(r.memory, storage)
    out.push({ logits: r.logits!.data, memory })
  }
  return out
}

/** One step on the host's sessions: the reply's `kvPath` and logits. */
async function hostStep(sessions: HostSessions, id: string, seq: number, observation: Record<string, unknown>) {
  const reply = unpackBody((await sessions.step(id, { seq, observation, options: { returnLogits: true } })).packed) as { kvPath: string; graph?: string; logits: { data: Uint8Array } }
  const bytes = new Uint8Array(reply.logits.data)
  return { kvPath: reply.kvPath, graph: reply.graph, logits: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) }
}

describe('GPU host (wasm backend)', () => {
  it('runs steps on resident K/V with the engine’s logits; durableSeq and backend on every reply', async () => {
    const ref = await reference()
    for (const resident of [true, false]) {
      const { client } = await host({ resident })
      const created = await client.createSession({ id: 's_a', policy: WINDOW })
      expect(created.status, JSON.stringify(created.data)).toBe(201)
      for (let seq = 1; seq <= texts.length; seq++) {
        const r = await client.step('s_a', seq, { text: texts[seq - 1] }, { returnLogits: true }, seq % 2 === 0)
        expect(r.status, JSON.stringify(r.data)).toBe(200)
        expect(r.data).toMatchObject({ seq, backend: 'wasm', durableSeq: seq, kvPath: resident ? 'resident' : 'roundtrip' })
        expect(relErr(logitsOf(r.data), ref[seq - 1])).toBeLessThan(1e-6)
      }
      // The window evicted (8 prefixes > 4 + 40 tokens): the device gather ran.
      const info = await client.info('s_a')
      expect(info.data.memory.tokensPerLayer[0]).toBe(44)
      // A retry of the last seq replays; another seq is a conflict.
      expect((await client.step('s_a', 8, { text: texts[7] })).status).toBe(200)
      expect((await client.step('s_a', 10, { text: 'x' })).data.code).toBe('seq_conflict')
    }
  })

  it('fixed-capacity layout: the engine’s logits and memory, while the fed past keeps its shape until the memory outgrows it', async () => {
    const FULL = { name: 'full', params: {} }
    // H2O and SnapKV read attn_total / attn_window, whose padding columns the host drops
    for (const policy of [WINDOW, FULL, H2O, SNAPKV]) {
      const refMemories: SessionMemory[] = []
      const ref = await reference(policy, texts.length, refMemories)
      for (const fixedCapacity of [1, 16, 64]) {
        const { client, sessions, store } = await host({ fixedCapacity })
        expect(sessions.settings.fixedCapacity).toBe(fixedCapacity)
        expect((await client.createSession({ id: 's_f', policy })).status).toBe(201)
        const capacities: number[] = []
        for (let seq = 1; seq <= texts.length; seq++) {
          const r = await client.step('s_f', seq, { text: texts[seq - 1] }, { returnLogits: true })
          expect(r.status, JSON.stringify(r.data)).toBe(200)
          expect(r.data.kvPath).toBe('resident')
          expect(relErr(logitsOf(r.data), ref[seq - 1]), `${policy.name} C=${fixedCapacity} step ${seq}`).toBeLessThan(1e-5)
          const held = (sessions as unknown as { hot: Map<string, { resident?: { capacity?: number; kv: { dims: readonly number[] }[] } }> }).hot.get('s_f')!.resident!
          expect(held.kv[0].dims[2]).toBe(held.capacity) // the tensors are `capacity` rows per head
          capacities.push(held.capacity!)
          // the durable copy holds exactly the real rows: the engine's memory
          const { memory } = decodeMemory((await store.get('s_f'))!.memory)
          const want = refMemories[seq - 1]
          expect(memory.tokens).toBe(want.tokens)
          expect(memory.layers[1].positions).toEqual(want.layers[1].positions)
          expect(relErr(memory.layers[1].keys, Array.from(want.layers[1].keys))).toBeLessThan(1e-5)
          expect(relErr(memory.layers[3].values, Array.from(want.layers[3].values))).toBeLessThan(1e-5)
        }
        // capacity only grows by doubling, and only when the memory needs it
        const tokens = refMemories.map((m) => m.tokens)
        capacities.forEach((c, i) => {
          expect(c).toBeGreaterThanOrEqual(tokens[i])
          expect(Math.log2(c / fixedCapacity) % 1).toBe(0)
          if (c > fixedCapacity) expect(c / 2).toBeLessThan(Math.max(...tokens.slice(0, i + 1)))
        })
        if (policy !== FULL) expect(new Set(capacities.slice(-4)).size).toBe(1) // bounded: the shape stops changing
      }
    }
  })

  it('GUI-KV stays device-resident (its keys come down, values stay): the engine’s logits, kept rows and memory', async () => {
    // robot-carried: camera frames give visual tokens, so GUI-KV's saliency and temporal terms both
    // run on real keys; rank 8 < headDim 32 gives residuals well above rounding noise, and at the
    // default rank 32 (= headDim) every residual is exactly 0, so the layouts agree there too
    for (const subspaceRank of [8, 32]) {
    const GUIKV = { name: 'guikv', params: { budgetTokens: 100, observationWindow: 8, subspaceRank } }
    const observations = robotObservations('hidden-target', 5, 6, { dx: 0.6, dy: -0.4, grip: 0 })
    const ref = await engineSteps('robot-carried', GUIKV, observations)
    expect(ref.at(-1)!.memory.tokens).toBe(100) // GUI-KV evicted
    for (const fixedCapacity of [0, 64]) {
      const { sessions, store } = await host({ fixedCapacity })
      await sessions.create('s_g', { model: 'robot-carried', policy: GUIKV, memoryDtype: 'float32' })
      for (const [i, observation] of observations.entries()) {
        const { kvPath, logits } = await hostStep(sessions, 's_g', i + 1, observation)
        expect(kvPath).toBe('resident')
        expect(relErr(logits, ref[i].logits), `C=${fixedCapacity} step ${i + 1}`).toBeLessThan(1e-5)
        const { memory: stored } = decodeMemory((await store.get('s_g'))!.memory)
        const want = ref[i].memory
        expect(stored.tokens).toBe(want.tokens)
        for (const l of [0, 3]) {
          expect(stored.layers[l].positions, `C=${fixedCapacity} step ${i + 1} layer ${l}`).toEqual(want.layers[l].positions)
          expect(relErr(stored.layers[l].keys, Array.from(want.layers[l].keys))).toBeLessThan(1e-5)
          expect(relErr(stored.layers[l].values, Array.from(want.layers[l].values))).toBeLessThan(1e-5)
        }
      }
    }
    }
  })

  it('a TempoFit bank stays device-resident: the engine’s logits and bank (frames, K/V) while frames are dropped', async () => {
    const TEMPO = { name: 'tempofit', params: { frames: 3 } }
    const observations = robotObservations('moved-occluded', 9, 7, { dx: -0.5, dy: 0.5, grip: 0 })
    const ref = await engineSteps('robot-tempo', TEMPO, observations)
    // the bank is full from step 3 on and drops its oldest frame every step after
    expect(new Set(ref.at(-1)!.memory.layers[0].frames)).toEqual(new Set([5, 6, 7]))
    // the plain resident bank; --fixed-capacity alone (ignored by a bank), evicted and restored
    // every step; --capture (the fixed TempoFit graph with a bank of 64 slots growing to 256, the
    // slot gather's concat variant) kept hot, and evicted and restored every step
    for (const [fixedCapacity, capture, evict] of [[0, false, false], [64, false, true], [64, true, false], [64, true, true]] as const) {
      const label = `C=${fixedCapacity}${capture ? ' captured' : ''}${evict ? ' evicted' : ''}`
      // maxHot 1 + a second session: the bank is also evicted to its durable copy and restored
      const { sessions, store } = await host({ fixedCapacity, capture, captureTempo: capture, maxHot: evict ? 1 : 64 })
      await sessions.create('s_t', { model: 'robot-tempo', policy: TEMPO, memoryDtype: 'float32' })
      for (const [i, observation] of observations.entries()) {
        const { kvPath, graph, logits } = await hostStep(sessions, 's_t', i + 1, observation)
        expect(kvPath).toBe('resident')
        expect(graph, label).toBe(capture ? 'fixed' : undefined)
        expect(relErr(logits, ref[i].logits), `${label} step ${i + 1}`).toBeLessThan(1e-5)
        const { memory: stored } = decodeMemory((await store.get('s_t'))!.memory)
        const want = ref[i].memory
        expect(stored.tokens).toBe(want.tokens)
        expect(stored.layerIds).toEqual(want.layerIds)
        for (const l of [0, 1]) {
          expect(stored.layers[l].frames, `${label} step ${i + 1} layer ${l}`).toEqual(want.layers[l].frames)
          expect(relErr(stored.layers[l].keys, Array.from(want.layers[l].keys))).toBeLessThan(1e-5)
          expect(relErr(stored.layers[l].values, Array.from(want.layers[l].values))).toBeLessThan(1e-5)
        }
        if (evict) {
          await sessions.create(`s_other_${i}`, { model: 'robot-tempo', policy: TEMPO, memoryDtype: 'float32' })
          expect(sessions.hotCount).toBe(1)
        }
      }
    }
  })

  it('a carried-KV policy on a TempoFit model runs resident (its bank ports get an empty bank): the engine’s logits', async () => {
    const WIN = { name: 'window', params: { sinkTokens: 0, recentTokens: 120 } }
    const observations = robotObservations('reach-red', 4, 4, { dx: 0.3, dy: 0.3, grip: 0 })
    const ref = await engineSteps('robot-tempo', WIN, observations)
    const { sessions } = await host()
    await sessions.create('s_w', { model: 'robot-tempo', policy: WIN, memoryDtype: 'float32' })
    for (const [i, observation] of observations.entries()) {
      const { kvPath, logits } = await hostStep(sessions, 's_w', i + 1, observation)
      expect(kvPath).toBe('resident')
      expect(relErr(logits, ref[i].logits), `step ${i + 1}`).toBeLessThan(1e-5)
    }
  })

  it('--capture (on wasm: the fixed-capacity float-table graph, uncaptured) gives the engine’s logits and memory', async () => {
    const FULL = { name: 'full', params: {} }
    for (const policy of [WINDOW, FULL, H2O, SNAPKV]) {
      const refMemories: SessionMemory[] = []
      const ref = await reference(policy, texts.length, refMemories)
      for (const fixedCapacity of [16, 64]) {
        const { client, sessions, store } = await host({ fixedCapacity, capture: true })
        expect(sessions.settings.capture).toBe(true)
        expect((await client.createSession({ id: 's_c', policy })).status).toBe(201)
        for (let seq = 1; seq <= texts.length; seq++) {
          const r = await client.step('s_c', seq, { text: texts[seq - 1] }, { returnLogits: true })
          expect(r.status, JSON.stringify(r.data)).toBe(200)
          expect(r.data).toMatchObject({ kvPath: 'resident', graph: 'fixed' })
          expect(relErr(logitsOf(r.data), ref[seq - 1]), `${policy.name} C=${fixedCapacity} step ${seq}`).toBeLessThan(1e-5)
          const { memory } = decodeMemory((await store.get('s_c'))!.memory)
          const want = refMemories[seq - 1]
          expect(memory.tokens).toBe(want.tokens)
          for (const l of [0, 3]) {
            expect(memory.layers[l].positions).toEqual(want.layers[l].positions)
            expect(relErr(memory.layers[l].keys, Array.from(want.layers[l].keys))).toBeLessThan(1e-5)
            expect(relErr(memory.layers[l].values, Array.from(want.layers[l].values))).toBeLessThan(1e-5)
          }
        }
      }
    }
  })

  it('float16 sessions stay device-resident with float16Resident: each step rounds the kept rows as a reload does (carried K/V and a TempoFit bank, every layout)', async () => {
    const half = { dtype: 'float16' } as const
    const isHalf = (a: Float32Array) => f16BitsToF32(f32ToF16Bits(a)).every((v, i) => v === a[i])
    // value for value (=== : the device rounding gives +0 where float16 keeps −0, `roundToHalf`)
    const sameValues = (a: Float32Array, b: Float32Array) => a.length === b.length && a.every((v, i) => v === b[i])
    // carried K/V on tiny-gqa under H2O (evicts every step): the dynamic layout runs the engine's own
    // graph, so its memory equals the engine's value for value; the fixed-capacity float-table graph
    // (--capture, uncaptured on wasm) and the padded fixed-capacity layout compute in another order,
    // so a value may land one float16 step away (float16 values within 1e-3) and the next steps'
    // logits move by ~1e-5 (within 1e-4; the dynamic layout stays within 1e-5)
    const refMemories: SessionMemory[] = []
    const ref = await reference(H2O, 6, refMemories, half)
    expect(isHalf(refMemories[0].layers[0].keys)).toBe(true)
    expect(isHalf((await (async () => { const m: SessionMemory[] = []; await reference(H2O, 1, m); return m[0] })()).layers[0].keys)).toBe(false) // float32 keeps unrounded values: the check can fail
    for (const [fixedCapacity, capture] of [[0, false], [16, false], [16, true]] as const) {
      const label = `C=${fixedCapacity}${capture ? ' captured' : ''}`
      const { client, store } = await host({ fixedCapacity, capture, float16Resident: true })
      expect((await client.createSession({ id: 's_h', policy: H2O, memoryDtype: 'float16' })).status).toBe(201)
      for (let seq = 1; seq <= 6; seq++) {
        const r = await client.step('s_h', seq, { text: texts[seq - 1] }, { returnLogits: true })
        expect(r.status, JSON.stringify(r.data)).toBe(200)
        expect(r.data, label).toMatchObject({ kvPath: 'resident', ...(capture && { graph: 'fixed' }) })
        expect(relErr(logitsOf(r.data), ref[seq - 1]), `${label} step ${seq}`).toBeLessThan(fixedCapacity ? 1e-4 : 1e-5)
        const { memory } = decodeMemory((await store.get('s_h'))!.memory)
        const want = refMemories[seq - 1]
        expect(memory.tokens).toBe(want.tokens)
        for (const l of [0, 3]) {
          expect(memory.layers[l].positions).toEqual(want.layers[l].positions)
          for (const part of ['keys', 'values'] as const) {
            if (fixedCapacity === 0) expect(sameValues(memory.layers[l][part], want.layers[l][part]), `${label} step ${seq} layer ${l} ${part}`).toBe(true)
            else expect(relErr(memory.layers[l][part], Array.from(want.layers[l][part]))).toBeLessThan(1e-3)
          }
        }
      }
    }
    // a TempoFit bank (robot-tempo, 3 frames): the dynamic bank (its first step rounds the new rows
    // through the concat gather) and the captured one (the fixed TempoFit graph's kv_absmax, the
    // slot gather rounding)
    const TEMPO = { name: 'tempofit', params: { frames: 3 } }
    const observations = robotObservations('moved-occluded', 9, 5, { dx: -0.5, dy: 0.5, grip: 0 })
    const tref = await engineSteps('robot-tempo', TEMPO, observations, half)
    for (const capture of [false, true]) {
      const { sessions, store } = await host({ fixedCapacity: capture ? 64 : 0, capture, float16Resident: true })
      await sessions.create('s_t', { model: 'robot-tempo', policy: TEMPO, memoryDtype: 'float16' })
      for (const [i, observation] of observations.entries()) {
        const { kvPath, logits } = await hostStep(sessions, 's_t', i + 1, observation)
        expect(kvPath).toBe('resident')
        expect(relErr(logits, tref[i].logits), `captured=${capture} step ${i + 1}`).toBeLessThan(capture ? 1e-4 : 1e-5)
        const { memory: stored } = decodeMemory((await store.get('s_t'))!.memory)
        const want = tref[i].memory
        for (const l of [0, 1]) {
          expect(stored.layers[l].frames).toEqual(want.layers[l].frames)
          for (const part of ['keys', 'values'] as const) {
            if (!capture) expect(sameValues(stored.layers[l][part], want.layers[l][part]), `step ${i + 1} layer ${l} ${part}`).toBe(true)
            else expect(relErr(stored.layers[l][part], Array.from(want.layers[l][part]))).toBeLessThan(1e-3)
          }
        }
      }
    }
    // float16Resident is the default with resident K/V (the check passed: its verdict is in the
    // settings); float16Resident: false round-trips float16
    const dflt = await host()
    expect((await dflt.client.createSession({ id: 's_d', policy: WINDOW, memoryDtype: 'float16' })).status).toBe(201)
    expect((await dflt.client.step('s_d', 1, { text: texts[0] })).data).toMatchObject({ kvPath: 'resident' })
    expect(dflt.sessions.settings).toMatchObject({ float16Resident: true, float16Check: expect.stringMatching(/^the half gather rounds 98304 probe values as the codec$/) })
    expect((await host({ resident: false })).sessions.settings.float16Resident).toBe(false)
    const { client, sessions } = await host({ float16Resident: false })
    expect(sessions.settings.float16Resident).toBe(false)
    expect((await client.createSession({ id: 's_f', policy: WINDOW, memoryDtype: 'float16' })).status).toBe(201)
    expect((await client.step('s_f', 1, { text: texts[0] })).data).toMatchObject({ kvPath: 'roundtrip' })
  })

  it('KIVI sessions stay device-resident with a host mirror: the stored memory equals the engine\'s bit for bit, and only changed rows go up', async () => {
    // small groups so that rows are quantized, and key blocks re-quantized as H2O / the window
    // evict, within 8 steps; 2- and 4-bit, per-layer bits, a quantized tail
    const storages: StorageOptions[] = [
      { dtype: 'kivi', kivi: { bits: 4, groupSize: 8, residualTokens: 8 } },
      { dtype: 'kivi', kivi: { bits: 2, groupSize: 8, residualTokens: 0, layerBits: [2, 4, 4, 2] } },
      { dtype: 'kivi', kivi: { bits: 4, groupSize: 16, residualTokens: 0, tail: 'quantized' } },
    ]
    const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length)
    for (const policy of [H2O, WINDOW, { name: 'full', params: {} }])
      for (const storage of storages) {
        const label = `${policy.name} ${JSON.stringify(storage.kivi)}`
        const refMemories: SessionMemory[] = []
        const ref = await reference(policy, 8, refMemories, storage)
        const { sessions, store } = await host()
        const kivi = storage.kivi as Record<string, unknown>
        await sessions.create('s_k', { model: 'tiny-gqa', policy, memoryDtype: 'kivi', kivi: { ...kivi } as never })
        let uploads = 0
        const original = ModelRuntime.prototype.runTensors
        const spy = vi.spyOn(ModelRuntime.prototype, 'runTensors').mockImplementation(function (this: ModelRuntime, feeds, fetches) {
          if ('added.0.key' in feeds) uploads++
          return original.call(this, feeds, fetches)
        })
        for (let seq = 1; seq <= 8; seq++) {
          const { kvPath, logits } = await hostStep(sessions, 's_k', seq, { text: texts[seq - 1] })
          expect(kvPath, label).toBe('resident')
          expect(relErr(logits, ref[seq - 1]), `${label} step ${seq}`).toBe(0)
          const { memory } = decodeMemory((await store.get('s_k'))!.memory)
          const want = refMemories[seq - 1]
          expect(memory.tokens, label).toBe(want.tokens)
          for (let l = 0; l < want.layers.length; l++) {
            expect(memory.layers[l].positions).toEqual(want.layers[l].positions)
            for (const part of ['keys', 'values'] as const) {
              expect(bits(memory.layers[l][part]), `${label} step ${seq} layer ${l} ${part}`).toEqual(bits(want.layers[l][part]))
            }
          }
          // the device's rows themselves equal the mirror (what a reload gives)
          const held = (sessions as unknown as { hot: Map<string, { resident?: ResidentMemory }> }).hot.get('s_k')!.resident!
          expect(held.mirror, label).toBeDefined()
          for (let l = 0; l < want.layers.length; l++) {
            expect(bits(held.kv[2 * l].data as Float32Array), `${label} device keys ${l}`).toEqual(bits(want.layers[l].keys))
            expect(bits(held.kv[2 * l + 1].data as Float32Array), `${label} device values ${l}`).toEqual(bits(want.layers[l].values))
          }
        }
        spy.mockRestore()
        // rows changed by quantization (the new rows' float16 residual included) went up through the concat gather
        expect(uploads, label).toBeGreaterThan(0)
      }
    // evicted every step (maxHot 1, two sessions in turn): the mirror is rebuilt from the stored blob
    const storage: StorageOptions = { dtype: 'kivi', kivi: { bits: 4, groupSize: 8, residualTokens: 8 } }
    const refMemories: SessionMemory[] = []
    const ref = await reference(H2O, 6, refMemories, storage)
    const { sessions, store } = await host({ maxHot: 1 })
    for (const id of ['s_a', 's_b']) await sessions.create(id, { model: 'tiny-gqa', policy: H2O, memoryDtype: 'kivi', kivi: { bits: 4, groupSize: 8, residualTokens: 8 } })
    for (let seq = 1; seq <= 6; seq++)
      for (const id of ['s_a', 's_b']) {
        const { kvPath, logits } = await hostStep(sessions, id, seq, { text: texts[seq - 1] })
        expect(kvPath).toBe('resident')
        expect(relErr(logits, ref[seq - 1]), `${id} step ${seq}`).toBe(0)
        const { memory } = decodeMemory((await store.get(id))!.memory)
        expect(bits(memory.layers[2].keys)).toEqual(bits(refMemories[seq - 1].layers[2].keys))
      }
    // GUI-KV reads keys: for a mirrored memory they are the mirror's rows and the new rows (no
    // download of the past), on robot-carried (visual tokens; rank 8: its selection is stable)
    const GUIKV = { name: 'guikv', params: { budgetTokens: 80, subspaceRank: 8 } }
    const gStorage: StorageOptions = { dtype: 'kivi', kivi: { bits: 4, groupSize: 16, residualTokens: 16 } }
    const gObs = robotObservations('moved-occluded', 5, 5, { dx: 0.5, dy: 0, grip: 0 })
    const gref = await engineSteps('robot-carried', GUIKV, gObs, gStorage)
    const g = await host()
    await g.sessions.create('s_g', { model: 'robot-carried', policy: GUIKV, memoryDtype: 'kivi', kivi: { bits: 4, groupSize: 16, residualTokens: 16 } })
    for (const [i, observation] of gObs.entries()) {
      const r = await hostStep(g.sessions, 's_g', i + 1, observation)
      expect(r.kvPath).toBe('resident')
      expect(relErr(r.logits, gref[i].logits), `guikv step ${i + 1}`).toBe(0)
      const { memory } = decodeMemory((await g.store.get('s_g'))!.memory)
      expect(memory.layers[1].positions, `guikv step ${i + 1}`).toEqual(gref[i].memory.layers[1].positions)
      expect(bits(memory.layers[1].keys)).toEqual(bits(gref[i].memory.layers[1].keys))
    }
    // with --fixed-capacity and --capture a KIVI session keeps the dynamic layout (the mirror needs it)
    const fixed = await host({ fixedCapacity: 64, capture: true })
    await fixed.sessions.create('s_c', { model: 'tiny-gqa', policy: H2O, memoryDtype: 'kivi', kivi: { bits: 4, groupSize: 8, residualTokens: 8 } })
    for (let seq = 1; seq <= 3; seq++) {
      const r = await hostStep(fixed.sessions, 's_c', seq, { text: texts[seq - 1] })
      expect(r).toMatchObject({ kvPath: 'resident', graph: undefined })
      expect(relErr(r.logits, ref[seq - 1])).toBe(0)
    }
    // a TempoFit bank (robot-tempo, 3 frames: it fills, then drops a frame every step), its first
    // step from an empty bank (every row uploaded): frames, K/V bit for bit against the engine
    const TEMPO = { name: 'tempofit', params: { frames: 3 } }
    const observations = robotObservations('moved-occluded', 9, 6, { dx: -0.5, dy: 0.5, grip: 0 })
    for (const kivi of [{ bits: 4, groupSize: 16, residualTokens: 16 }, { bits: 2, groupSize: 32, residualTokens: 0, tail: 'quantized' }] as StorageOptions['kivi'][]) {
      const tStorage: StorageOptions = { dtype: 'kivi', kivi }
      const tref = await engineSteps('robot-tempo', TEMPO, observations, tStorage)
      for (const opts of [{}, { maxHot: 1 }]) {
        const t = await host(opts)
        await t.sessions.create('s_t', { model: 'robot-tempo', policy: TEMPO, memoryDtype: 'kivi', kivi: kivi as never })
        if ('maxHot' in opts) await t.sessions.create('s_o', { model: 'tiny-gqa', policy: H2O, memoryDtype: 'float32' })
        for (const [i, observation] of observations.entries()) {
          const r = await hostStep(t.sessions, 's_t', i + 1, observation)
          if ('maxHot' in opts) await hostStep(t.sessions, 's_o', i + 1, { text: texts[i] }) // evicts s_t
          expect(r.kvPath).toBe('resident')
          expect(relErr(r.logits, tref[i].logits), `${JSON.stringify(kivi)} step ${i + 1}`).toBe(0)
          const { memory: stored } = decodeMemory((await t.store.get('s_t'))!.memory)
          const want = tref[i].memory
          for (const l of [0, 1]) {
            expect(stored.layers[l].frames).toEqual(want.layers[l].frames)
            for (const part of ['keys', 'values'] as const) expect(bits(stored.layers[l][part]), `step ${i + 1} layer ${l} ${part}`).toEqual(bits(want.layers[l][part]))
          }
          if (!('maxHot' in opts)) {
            const held = (t.sessions as unknown as { hot: Map<string, { resident?: ResidentMemory }> }).hot.get('s_t')!.resident!
            for (let l = 0; l < 2; l++) expect(bits(held.kv[2 * l].data as Float32Array)).toEqual(bits(want.layers[l].keys))
          }
        }
      }
    }
  }, 60_000)

  it('--capture pads each prefix to a 16-token bucket: prompts of different lengths share one bound graph', async () => {
    const { sessions } = await host({ fixedCapacity: 128, capture: true })
    await sessions.create('s_b', { model: 'tiny-gqa', policy: { name: 'full', params: {} }, memoryDtype: 'float32' })
    const lengths: number[] = []
    for (const [i, text] of ['abcdefghij klmnopq', 'abcdefghij klmnopqrstu', 'abcdefghij klmnopqrstuvwxyz'].entries()) {
      const r = unpackBody((await sessions.step('s_b', { seq: i + 1, observation: { text } })).packed) as { memory: { tokensPerLayer: number[] } }
      lengths.push(r.memory.tokensPerLayer[0])
    }
    // three different prefix lengths, all within one bucket: one graph
    const perStep = lengths.map((n, i) => n - (lengths[i - 1] ?? 0))
    expect(new Set(perStep).size, String(perStep)).toBe(3)
    expect(new Set(perStep.map(bucketOf)).size, String(perStep)).toBe(1)
    const held = (sessions as unknown as { hot: Map<string, { resident?: { bound?: { runners: Map<number, unknown> } } }> }).hot.get('s_b')!.resident!
    expect([...held.bound!.runners.keys()]).toEqual([bucketOf(perStep[0])])
  })

  it('--capture: GUI-KV (keys read back), a TempoFit bank (captured too), eviction and restore every step', async () => {
    const GUIKV = { name: 'guikv', params: { budgetTokens: 100, observationWindow: 8, subspaceRank: 8 } }
    const observations = robotObservations('hidden-target', 5, 6, { dx: 0.6, dy: -0.4, grip: 0 })
    const ref = await engineSteps('robot-carried', GUIKV, observations)
    const { sessions, store } = await host({ fixedCapacity: 64, capture: true, maxHot: 1 })
    await sessions.create('s_g', { model: 'robot-carried', policy: GUIKV, memoryDtype: 'float32' })
    for (const [i, observation] of observations.entries()) {
      const { graph, logits } = await hostStep(sessions, 's_g', i + 1, observation)
      expect(graph).toBe('fixed')
      expect(relErr(logits, ref[i].logits), `step ${i + 1}`).toBeLessThan(1e-5)
      const { memory: stored } = decodeMemory((await store.get('s_g'))!.memory)
      expect(stored.tokens).toBe(ref[i].memory.tokens)
      for (const l of [0, 3]) expect(stored.layers[l].positions, `step ${i + 1} layer ${l}`).toEqual(ref[i].memory.layers[l].positions)
      // another session pushes this one out (maxHot 1): its next step restores it from the durable copy
      await sessions.create(`s_other_${i}`, { model: 'tiny-gqa', policy: WINDOW, memoryDtype: 'float32' })
    }
    // with capture a TempoFit bank is captured too, unless captureTempo is false
    const TEMPO = { name: 'tempofit', params: { frames: 3 } }
    await sessions.create('s_t', { model: 'robot-tempo', policy: TEMPO, memoryDtype: 'float32' })
    expect((await hostStep(sessions, 's_t', 1, observations[0])).graph).toBe('fixed')
    const noTempo = await host({ fixedCapacity: 64, capture: true, captureTempo: false })
    await noTempo.sessions.create('s_t', { model: 'robot-tempo', policy: TEMPO, memoryDtype: 'float32' })
    const t = await hostStep(noTempo.sessions, 's_t', 1, observations[0])
    expect(t.kvPath).toBe('resident')
    expect(t.graph).toBeUndefined()
    await expect(host({ capture: true })).rejects.toThrow(/fixed capacity/)
    await expect(host({ fixedCapacity: 64, captureTempo: true })).rejects.toThrow(/captureTempo needs capture/)
  })

  it('fixed-capacity sessions evicted and restored every step (maxHot 1) keep the engine’s logits', async () => {
    const ref = await reference(H2O, 6)
    const { client, sessions } = await host({ fixedCapacity: 16, maxHot: 1 })
    for (const id of ['s_x', 's_y']) await client.createSession({ id, policy: H2O })
    for (let seq = 1; seq <= 6; seq++)
      for (const id of ['s_x', 's_y']) {
        const r = await client.step(id, seq, { text: texts[seq - 1] }, { returnLogits: true })
        expect(r.status, JSON.stringify(r.data)).toBe(200)
        expect(relErr(logitsOf(r.data), ref[seq - 1]), `${id} step ${seq}`).toBeLessThan(1e-5)
        expect(sessions.hotCount).toBe(1)
      }
  })

  it('fixed-capacity upload (a restored session) pads each head and gives back exactly the real rows', async () => {
    const memories: SessionMemory[] = []
    await reference(WINDOW, 3, memories)
    const mem = memories[2] // 3 prefixes > 16 tokens
    const runtime = ModelRuntime.for(ortForNode(), nodeModelSource('tiny-gqa'))
    expect(() => capacityFor(0, 5)).toThrow(RangeError)
    expect(capacityFor(16, 100, 70)).toBe(100) // doubling stops at the limit, never below the need
    expect(capacityFor(16, 50, 70)).toBe(64)
    const r = residentFrom(mem, runtime, 16)
    expect(r.capacity).toBe(capacityFor(16, mem.tokens))
    expect(r.capacity! >= mem.tokens && r.capacity! / 2 < mem.tokens).toBe(true)
    expect([...r.kv[0].dims]).toEqual([1, mem.kvHeads, r.capacity, mem.headDim])
    const back = await materialize(r)
    expect(back.tokens).toBe(mem.tokens)
    back.layers.forEach((l, i) => {
      expect(l.keys).toEqual(mem.layers[i].keys)
      expect(l.values).toEqual(mem.layers[i].values)
    })
  })

  it('writes the durable copy every K steps (write-behind) and declares lost steps after a lost runtime', async () => {
    const ref = await reference()
    const { client, store, sessions } = await host({ durableEvery: 3 })
    await client.createSession({ id: 's_k', policy: WINDOW })
    const writes0 = store.writes
    const durable: number[] = []
    for (let seq = 1; seq <= 4; seq++) durable.push((await client.step('s_k', seq, { text: texts[seq - 1] })).data.durableSeq)
    expect(durable).toEqual([0, 0, 3, 3])
    expect(store.writes - writes0).toBe(1)
    // The runtime is lost during step 5: sessions are rebuilt from the durable copy (step 3);
    // step 4 is gone and the reply says so.
    const rt = ModelRuntime.for(ortForNode(), nodeModelSource('tiny-gqa'), 'wasm', { key: 'resident' })
    const original = rt.runTensors.bind(rt)
    let failures = 0
    rt.runTensors = async (f, names) => (failures++ === 0 ? Promise.reject(new Error('GPU device lost (simulated)')) : original(f, names))
    try {
      const r = await client.step('s_k', 5, { text: texts[4] }, { returnLogits: true })
      expect(r.status, JSON.stringify(r.data)).toBe(200)
      expect(r.data.restored).toEqual({ fromSeq: 3, lostSteps: 1 })
      expect(sessions.recoveries).toBe(1)
      expect(r.data.memory.nextPosition).toBe(texts.slice(0, 3).concat(texts[4]).reduce((n, t) => n + t.length, 0))
    } finally {
      rt.runTensors = original
    }
    expect(ref.length).toBe(8)
    // a KIVI session's memory is on the host too (its mirror): the lost device costs no step, and
    // the next steps go on as if nothing happened (logits of the uninterrupted run)
    const storage: StorageOptions = { dtype: 'kivi', kivi: { bits: 4, groupSize: 8, residualTokens: 8 } }
    const kref = await reference(WINDOW, 5, undefined, storage)
    const k = await host({ durableEvery: 3 })
    await k.sessions.create('s_q', { model: 'tiny-gqa', policy: WINDOW, memoryDtype: 'kivi', kivi: { bits: 4, groupSize: 8, residualTokens: 8 } })
    for (let seq = 1; seq <= 4; seq++) await hostStep(k.sessions, 's_q', seq, { text: texts[seq - 1] })
    let lost = 0
    rt.runTensors = async (f, names) => (lost++ === 0 ? Promise.reject(new Error('GPU device lost (simulated)')) : original(f, names))
    try {
      const r = await k.sessions.step('s_q', { seq: 5, observation: { text: texts[4] }, options: { returnLogits: true } })
      const reply = unpackBody(r.packed) as { restored?: unknown; logits: { data: Uint8Array } }
      expect(k.sessions.recoveries).toBe(1)
      expect(reply.restored).toBeUndefined() // no step lost: nothing to declare
      const bytes = new Uint8Array(reply.logits.data)
      expect(relErr(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), kref[4])).toBe(0)
    } finally {
      rt.runTensors = original
    }
  })

  it('recovers from a lost runtime with nothing lost when the copy is written every step', async () => {
    const ref = await reference()
    const { client, sessions } = await host({ durableEvery: 1 })
    await client.createSession({ id: 's_l', policy: WINDOW })
    const rt = ModelRuntime.for(ortForNode(), nodeModelSource('tiny-gqa'), 'wasm', { key: 'resident' })
    const original = rt.runTensors.bind(rt)
    let calls = 0
    rt.runTensors = async (f, names) => (++calls === 4 ? Promise.reject(new Error('GPU device lost (simulated)')) : original(f, names))
    try {
      for (let seq = 1; seq <= 6; seq++) {
        const r = await client.step('s_l', seq, { text: texts[seq - 1] }, { returnLogits: true })
        expect(r.status, JSON.stringify(r.data)).toBe(200)
        expect(r.data.restored).toBeUndefined()
        expect(relErr(logitsOf(r.data), ref[seq - 1])).toBeLessThan(1e-6)
      }
    } finally {
      rt.runTensors = original
    }
    expect(sessions.recoveries).toBe(1)
    // A second loss in the retried step is a 503, and the session is still intact after.
    rt.runTensors = async () => Promise.reject(new Error('GPU device lost (simulated)'))
    try {
      const lost = await client.step('s_l', 7, { text: texts[6] })
      expect(lost.status).toBe(503)
      expect(lost.data.code).toBe('gpu_device_lost')
    } finally {
      rt.runTensors = original
    }
    const r = await client.step('s_l', 7, { text: texts[6] }, { returnLogits: true })
    expect(relErr(logitsOf(r.data), ref[6])).toBeLessThan(1e-6)
  })

  it('holds at most maxHot sessions; an evicted one comes back from its durable copy unchanged', async () => {
    const ref = await reference(WINDOW, 4)
    const { client, sessions } = await host({ maxHot: 2 })
    for (const id of ['s_1', 's_2', 's_3']) await client.createSession({ id, policy: WINDOW })
    expect(sessions.hotCount).toBe(2)
    for (let seq = 1; seq <= 4; seq++)
      for (const id of ['s_1', 's_2', 's_3']) {
        const r = await client.step(id, seq, { text: texts[seq - 1] }, { returnLogits: true })
        expect(r.status, JSON.stringify(r.data)).toBe(200)
        expect(relErr(logitsOf(r.data), ref[seq - 1])).toBeLessThan(1e-6)
        expect(sessions.hotCount).toBeLessThanOrEqual(2)
      }
  })

  it('a durable copy that cannot be read is 500 stored_memory_corrupt, and the session can still be deleted; a retry after an eviction or a restart gets the stored reply', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-host-'))
    try {
      const make = (maxHot = 64) => {
        const sessions = new HostSessions({ choice, store: new FileStore(dir), model: modelsFrom(defaultModelsDir()), maxHot })
        const app = hostApp({ sessions, secret: SECRET })
        const fetcher = (url: string, init?: RequestInit) => Promise.resolve(app.request(url, { ...init, headers: { ...(init?.headers as Record<string, string>), [HOST_SECRET_HEADER]: SECRET } }))
        return { sessions, app, client: api(fetcher, 'http://host') }
      }
      const choice = await selectBackend('wasm')
      // the last reply survives an eviction (maxHot 1) and a clean restart (flushAll)
      const a = make(1)
      for (const id of ['s_r', 's_o']) expect((await a.client.createSession({ id, policy: WINDOW })).status).toBe(201)
      const first = await a.client.step('s_r', 1, { text: texts[0] })
      await a.client.step('s_o', 1, { text: texts[0] }) // evicts s_r
      const again = await a.client.step('s_r', 1, { text: texts[0] })
      expect(again.status).toBe(200)
      expect(again.data).toEqual(first.data)
      await a.client.step('s_r', 2, { text: texts[1] })
      const second = await a.client.step('s_r', 2, { text: texts[1] })
      await a.sessions.flushAll()
      const b = make()
      expect((await b.client.step('s_r', 2, { text: texts[1] })).data).toEqual(second.data)
      expect((await b.client.step('s_r', 1, { text: texts[0] })).status).toBe(409)
      // a damaged copy (truncated file, then a header that is not JSON)
      const file = path.join(dir, 's_r.session')
      for (const damage of [(bytes: Buffer) => bytes.subarray(0, bytes.length - 500), (bytes: Buffer) => Buffer.concat([bytes.subarray(0, 4), Buffer.from('{not json'), bytes.subarray(13)])]) {
        writeFileSync(file, damage(readFileSync(file)))
        const d = make()
        const r = await d.client.step('s_r', 3, { text: texts[2] })
        expect(r.status).toBe(500)
        expect(r.type).toContain('application/problem+json')
        expect(r.data).toMatchObject({ code: 'stored_memory_corrupt' })
        expect(JSON.stringify(r.data)).not.toMatch(/\bat .*\.ts:\d+/) // no stack trace
        expect((await d.client.info('s_r')).data).toMatchObject({ code: 'stored_memory_corrupt' })
        expect(JSON.stringify(r.data)).not.toContain(dir) // no file path either
      }
      const d = make()
      const del = await d.client.call('DELETE', '/v1/sessions/s_r')
      expect(del.status).toBe(200)
      expect(existsSync(file)).toBe(false)
      expect(existsSync(path.join(dir, 's_r.reply'))).toBe(false)
      expect((await d.client.call('DELETE', '/v1/sessions/s_r')).status).toBe(404)
      expect((await d.client.createSession({ id: 's_r', policy: WINDOW })).status).toBe(201)
      expect((await d.client.step('s_r', 1, { text: texts[0] })).status).toBe(200)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a kept reply only answers a retry of its own step and state: not after a failed write, a seed, or past 2^32', async () => {
    class FlakyStore extends MemoryStore {
      failNext = false
      override async put(id: string, r: Parameters<MemoryStore['put']>[1]) {
        if (this.failNext) {
          this.failNext = false
          throw new Error('ENOSPC (simulated)')
        }
        return super.put(id, r)
      }
    }
    const seedReq = (app: ReturnType<typeof hostApp>, id: string, seq: number, blob: Uint8Array) =>
      app.request(`/v1/sessions/${id}/state`, { method: 'PUT', headers: { [HOST_SECRET_HEADER]: SECRET, 'content-type': 'application/msgpack' }, body: pack({ config: { model: 'tiny-gqa', policy: WINDOW, memoryDtype: 'float32' }, seq, tag: `"${seq}.9"`, memory: blob }) })
    const make = async (opts: { maxHot?: number; durableEvery?: number }, store: MemoryStore | FileStore) => {
      const sessions = new HostSessions({ choice: await selectBackend('wasm'), store, model: modelsFrom(defaultModelsDir()), ...opts })
      const app = hostApp({ sessions, secret: SECRET })
      const fetcher = (url: string, init?: RequestInit) => Promise.resolve(app.request(url, { ...init, headers: { ...(init?.headers as Record<string, string>), [HOST_SECRET_HEADER]: SECRET } }))
      return { sessions, app, client: api(fetcher, 'http://host') }
    }
    // a step whose durable write fails: its retry is not answered with the previous step's reply
    const flaky = new FlakyStore()
    const b = await make({}, flaky)
    await b.client.createSession({ id: 's_b', policy: WINDOW })
    await b.client.step('s_b', 1, { text: texts[0] })
    flaky.failNext = true
    expect((await b.client.step('s_b', 2, { text: texts[1] })).status).toBe(500)
    const retry = await b.client.step('s_b', 2, { text: texts[1] })
    expect(retry.data.seq === 1).toBe(false)
    await b.sessions.flushAll()
    expect(flaky.replies.get('s_b')?.seq ?? 1).toBe(1) // never the step-1 reply filed as seq 2
    // a seeded state does not replay the reply of the state it replaced
    const a = await make({ maxHot: 1 }, new MemoryStore())
    for (const id of ['s_r', 's_o']) await a.client.createSession({ id, policy: WINDOW })
    const blank = new Uint8Array((await a.client.exportMemory('s_o')).data) // step 0
    await a.client.step('s_r', 1, { text: texts[0] })
    await a.client.step('s_o', 1, { text: texts[0] }) // evicts s_r: its reply for seq 1 kept
    expect((await seedReq(a.app, 's_r', 1, blank)).status).toBe(200)
    await a.client.step('s_o', 2, { text: texts[1] }) // evicts s_r again
    expect((await a.client.step('s_r', 1, { text: texts[0] })).status).toBe(409)
    // seq past 2^32: the reply is kept (float64 seq), and a flush goes on past any failure
    const dir = mkdtempSync(path.join(tmpdir(), 'stepkv-host-'))
    try {
      const c = await make({ durableEvery: 8 }, new FileStore(dir))
      for (const id of ['s_a', 's_c']) await c.client.createSession({ id, policy: WINDOW })
      expect((await seedReq(c.app, 's_a', 2 ** 32, blank)).status).toBe(200)
      const big = await c.client.step('s_a', 2 ** 32 + 1, { text: texts[0] })
      expect(big.status).toBe(200)
      expect((await c.client.step('s_c', 1, { text: texts[0] })).status).toBe(200) // not yet durable
      await c.sessions.flushAll()
      expect((await new FileStore(dir).get('s_c'))?.seq).toBe(1)
      const d = await make({}, new FileStore(dir))
      expect((await d.client.step('s_a', 2 ** 32 + 1, { text: texts[0] })).data).toEqual(big.data)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('checks forwarding state tags, adopts a seeded state and says when steps were lost', async () => {
    const { app, client } = await host()
    await client.createSession({ id: 's_f', policy: WINDOW })
    const headers = (base: string, next: string) => ({ [HOST_SECRET_HEADER]: SECRET, 'content-type': 'application/json', 'x-stepkv-base': base, 'x-stepkv-next': next })
    const stepF = (seq: number, base: string, next: string) =>
      app.request(`/v1/sessions/s_f/steps`, { method: 'POST', headers: headers(base, next), body: JSON.stringify({ seq, observation: { text: texts[seq - 1] } }) })
    const mismatch = await stepF(1, '"0.0"', '"1.1"')
    expect(mismatch.status).toBe(409)
    expect(((await mismatch.json()) as { code: string }).code).toBe('host_state_mismatch')
    // Seed from an exported state: memory of step 0, while the caller is at seq 2 (steps 1–2 lost).
    const blob = new Uint8Array(await (await client.exportMemory('s_f')).data)
    const seed = await app.request('/v1/sessions/s_f/state', {
      method: 'PUT',
      headers: { [HOST_SECRET_HEADER]: SECRET, 'content-type': 'application/msgpack' },
      body: pack({ config: { model: 'tiny-gqa', policy: WINDOW, memoryDtype: 'float32' }, seq: 2, tag: '"2.2"', memory: blob }),
    })
    expect(seed.status, await seed.clone().text()).toBe(200)
    const ok = await stepF(3, '"2.2"', '"3.3"')
    expect(ok.status).toBe(200)
    const body = unpack(new Uint8Array(await ok.arrayBuffer())) as { reply: Uint8Array; durable?: { seq: number; memory: Uint8Array } }
    const reply = unpack(body.reply) as Record<string, unknown>
    expect(reply.restored).toEqual({ fromSeq: 0, lostSteps: 2 })
    expect(body.durable?.seq).toBe(3)
    expect((await stepF(4, '"2.2"', '"4.4"')).status).toBe(409) // stale base
    expect((await stepF(4, '"3.3"', '"4.4"')).status).toBe(200)
    // a seed whose storage options or policy do not fit is refused; the held state stays
    const seedWith = (config: Record<string, unknown>) =>
      app.request('/v1/sessions/s_f/state', { method: 'PUT', headers: { [HOST_SECRET_HEADER]: SECRET, 'content-type': 'application/msgpack' }, body: pack({ config: { model: 'tiny-gqa', policy: WINDOW, memoryDtype: 'float32', ...config }, seq: 5, tag: '"5.5"', memory: blob }) })
    for (const [config, code] of [
      [{ memoryDtype: 'kivi', kivi: { layerBits: [2, 2] } }, 'invalid_storage'],
      [{ kivi: { bits: 2 } }, 'invalid_storage'],
      [{ policy: H2O }, 'invalid_request'],
    ] as const) {
      const r = await seedWith(config)
      expect(r.status, JSON.stringify(config)).toBe(400)
      expect(((await r.json()) as { code: string }).code).toBe(code)
    }
    expect((await stepF(5, '"4.4"', '"5.5"')).status).toBe(200)
  })

  it('answers bad input, a missing secret and unknown sessions with problem JSON', async () => {
    const { app, client } = await host()
    const noSecret = await app.request('/v1/sessions', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
    expect(noSecret.status).toBe(401)
    expect(noSecret.headers.get('content-type')).toContain('application/problem+json')
    expect((await client.createSession({ policy: { name: 'nope', params: {} } })).data.code).toBe('invalid_policy')
    expect((await client.createSession({ model: '../etc' })).data.code).toBe('unknown_model')
    expect((await client.createSession({ id: 'bad id!' })).status).toBe(400)
    // storage options as the Worker checks them: KIVI options only with memoryDtype 'kivi', valid for the model
    for (const body of [{ memoryDtype: 'kivi', kivi: { layerBits: [2, 2] } }, { memoryDtype: 'float32', kivi: { bits: 2 } }]) {
      const r = await client.createSession({ id: 's_kv', ...body })
      expect([r.status, r.data.code], JSON.stringify(body)).toEqual([400, 'invalid_storage'])
    }
    expect((await client.info('s_kv')).status).toBe(404) // nothing was stored
    expect((await client.step('s_missing', 1, { text: 'x' })).data.code).toBe('unknown_session')
    await client.createSession({ id: 's_b' })
    const bad = await client.step('s_b', 1, { image: 'AAAA' })
    expect(bad.status).toBe(400)
    expect(JSON.stringify(bad.data)).not.toContain('    at ')
    expect((await client.call('POST', '/v1/sessions/s_b/steps', { seq: 'one' })).data.code).toBe('invalid_request')
    expect((await client.createSession({ id: 's_b' })).data.code).toBe('session_exists')
    expect((await client.call('DELETE', '/v1/sessions/s_b')).status).toBe(200)
    expect((await client.info('s_b')).status).toBe(404)
  })
})
