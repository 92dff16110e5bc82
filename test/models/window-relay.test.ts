/**
 * Why a StreamingLLM window over a carried KV cache still solves the robot's delay-period tasks
 * (demo: 100 % on memory tasks with a 2-frame window, memoryless 4 %): the carried K/V of a frame
 * are not a function of its pixels alone. From layer 1 up they come from hidden states that
 * attended to the memory of that step, so the cue relays forward through the frames of the delay
 * (Transformer-XL's recurrence). Checked on the trained robot-carried model, both memory tasks, 3
 * seeds: two episodes that differ only in the hidden answer, each driven by the model under a
 * 2-frame window, are shown identical frames and proprio from the tick the answer vanished through
 * the go tick (the brake holds the gripper). At the go tick the window holds only such frames, and
 * - layer 0's K/V are bit-identical (a projection of identical embeddings at identical positions),
 * - layers ≥ 1 differ, and each go action heads for its own target: the cue came through the K/V.
 */
import { describe, expect, it } from 'vitest'
import { adapterFor } from '../../agents/index.ts'
import { nodeEncoderSource, nodeModelSource } from '../../gpu/node-models.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { ModelRuntime } from '../../gpu/session.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { RobotEnv, type Observation } from '../../sim/robot/index.ts'
import { fingerprint, hiddenAnswer } from '../sim/robot/helpers.ts'
import { initialMemory, policyFor, runStep } from '../../worker/engine.ts'

const MODEL = 'robot-carried'
const source = nodeModelSource(MODEL)
const manifest = source.manifest
const runtime = ModelRuntime.for(ortForNode(), source)
const adapter = adapterFor(manifest, 4096, ModelRuntime.for(ortForNode(), nodeEncoderSource(MODEL)))

const payload = (o: Observation) => ({
  images: o.frames.map((f) => ({ width: f.width, height: f.height, data: f.data })),
  proprio: [...o.proprio],
  instruction: o.instruction,
})

const maxAbsDiff = (a: Float32Array, b: Float32Array) => {
  expect(a.length).toBe(b.length)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

/**
 * Runs the model's own actions up to the go tick under a 2-frame window (162 tokens, no sinks);
 * returns the observations' fingerprints from the hidden tick through the go tick, the memory fed
 * to the go step and the go step's action chunk.
 */
async function toGoTick(task: string, seed: number, hiddenSeed: number) {
  const env = new RobotEnv()
  let obs: Observation = env.reset(task, seed, { hiddenSeed })
  const policy = policyFor(manifest, 'window', { sinkTokens: 0, recentTokens: 162 })
  let memory: SessionMemory = initialMemory(manifest, policy)
  const { holdUntilTick: go, hiddenFromTick } = env.episode
  const seen: string[] = []
  for (let tick = 0; tick < go; tick++) {
    if (tick >= hiddenFromTick!) seen.push(fingerprint(obs))
    const out = await runStep(runtime, memory, policy, { seq: tick + 1, observation: payload(obs) }, { maxPrefixTokens: 4096 }, adapter)
    memory = out.memory
    obs = env.step(out.action as never)
  }
  seen.push(fingerprint(obs))
  const out = await runStep(runtime, memory, policy, { seq: go + 1, observation: payload(obs) }, { maxPrefixTokens: 4096 }, adapter)
  const g = env.world.gripper
  return { memory, seen, action: out.action as { dx: number; dy: number }[], hiddenFrom: hiddenFromTick!, answer: { ...hiddenAnswer(task, env.world) }, at: { x: g.x, y: g.y } }
}

const cosine = (r: Awaited<ReturnType<typeof toGoTick>>) => {
  const [tx, ty] = [r.answer.x - r.at.x, r.answer.y - r.at.y]
  const { dx, dy } = r.action[0]
  return (dx * tx + dy * ty) / Math.hypot(dx, dy) / Math.hypot(tx, ty)
}

describe('a recent window over carried K/V relays the cue through the delay', () => {
  it.each(['hidden-target', 'moved-occluded'])(
    'robot-carried, %s: same frames in the window; layer 0 K/V identical, every deeper layer not; each go action heads for its own answer',
    async (task) => {
      let headed = 0
      let pairs = 0
      for (const seed of [3, 11, 42]) {
        const a = await toGoTick(task, seed, 0)
        let hb = 1
        let b = await toGoTick(task, seed, hb)
        while (b.answer.x === a.answer.x && b.answer.y === a.answer.y) b = await toGoTick(task, seed, ++hb)
        pairs++
        expect(b.hiddenFrom).toBe(a.hiddenFrom)
        // what the two sessions were shown from the hidden tick through the go tick is the same
        expect(a.seen).toEqual(b.seen)
        // the window holds only frames prefilled after the information vanished (frame seq = tick + 1)
        for (const m of [a.memory, b.memory]) {
          expect(m.tokens).toBeGreaterThan(0)
          expect(Math.min(...m.layers[0].frames)).toBeGreaterThan(a.hiddenFrom)
        }
        expect(Array.from(a.memory.layers[0].positions)).toEqual(Array.from(b.memory.layers[0].positions))
        expect(maxAbsDiff(a.memory.layers[0].keys, b.memory.layers[0].keys)).toBe(0)
        expect(maxAbsDiff(a.memory.layers[0].values, b.memory.layers[0].values)).toBe(0)
        for (let l = 1; l < a.memory.layers.length; l++) {
          expect(maxAbsDiff(a.memory.layers[l].keys, b.memory.layers[l].keys), `layer ${l} keys`).toBeGreaterThan(0.05)
          expect(maxAbsDiff(a.memory.layers[l].values, b.memory.layers[l].values), `layer ${l} values`).toBeGreaterThan(0.05)
        }
        for (const r of [a, b]) if (cosine(r) > 0.9) headed++
      }
      // the trained policy need not be perfect (demo: 100 % on these tasks with this window; 84–100 % with the previous weights)
      expect(headed).toBeGreaterThanOrEqual(2 * pairs - 1)
    },
  )
})
