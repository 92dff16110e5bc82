/**
 * @module `npm run bench -- robot-fidelity`: memory policies on the trained robot policy.
 * Episodes are recorded once closed-loop with the full KV cache (robot-carried); every policy ×
 * budget × storage width then replays the same observation sequences step by step (teacher-forced)
 * and its action chunk is compared with the full cache's: agreement = the first tick's (dx, dy)
 * within 0.2 (units of max speed, L2) and the same grip bit; mean L2 over the whole chunk. Each
 * configuration is also run closed-loop for task success (memory tasks separately).
 */
import { adapterFor } from '../agents/index.ts'
import type { RobotTick } from '../agents/robot.ts'
import { nodeEncoderSource, nodeModelSource } from '../gpu/node-models.ts'
import { ortForNode } from '../gpu/ort-node.ts'
import { ModelRuntime } from '../gpu/session.ts'
import { encodeMemory } from '../memory/codec.ts'
import { roundTrip } from '../memory/storage.ts'
import type { SessionMemory } from '../memory/types.ts'
import { RobotEnv, TASKS } from '../sim/robot/index.ts'
import { initialMemory, policyFor, runStep } from '../worker/engine.ts'
import { wilson } from '../sim/clients/stats.ts'
import { closedLoopSuccess, configLabel, storageOf, sweepConfigs, type SweepConfig } from './sweep.ts'

/** One configuration: model, policy and storage width. */
export type RobotConfig = SweepConfig<'robot-carried' | 'robot-tempo'>

type Obs = { images: { width: number; height: number; data: Uint8Array }[]; proprio: number[]; instruction: string }

const LIMITS = { maxPrefixTokens: 4096 }

function stepper(config: RobotConfig) {
  const source = nodeModelSource(config.model)
  const runtime = ModelRuntime.for(ortForNode(), source)
  const adapter = adapterFor(source.manifest, 4096, ModelRuntime.for(ortForNode(), nodeEncoderSource(config.model)))
  const policy = policyFor(source.manifest, config.policy, config.params)
  const storage = storageOf(config.bits, config.residualTokens, config.tail)
  let memory: SessionMemory = initialMemory(source.manifest, policy)
  let seq = 0
  let bytes = 0
  return {
    async act(observation: Obs): Promise<RobotTick[]> {
      if (config.memoryless) (memory = initialMemory(source.manifest, policy)), (seq = 0)
      const out = await runStep(runtime, memory, policy, { seq: ++seq, observation }, LIMITS, adapter)
      memory = roundTrip(out.memory, storage, memory)
      // A memoryless run carries nothing between steps: 0 bytes persisted.
      bytes = config.memoryless ? 0 : encodeMemory(memory, { policy: { name: policy.name, params: { ...policy.params } }, ...storage }).byteLength
      return out.action as RobotTick[]
    },
    bytes: () => bytes,
  }
}

const toObs = (o: { frames: { width: number; height: number; data: Uint8Array }[]; proprio: Float32Array; instruction: string }): Obs => ({
  images: o.frames.map((f) => ({ width: f.width, height: f.height, data: f.data })),
  proprio: [...o.proprio],
  instruction: o.instruction,
})

interface Recorded {
  task: string
  memoryTask: boolean
  steps: { obs: Obs; memoryDependent: boolean; action: RobotTick[] }[]
}

/** Closed-loop episode under `config`; returns success, and the trajectory when recording. */
async function episode(config: RobotConfig, task: string, seed: number) {
  const env = new RobotEnv()
  const agent = stepper(config)
  let o = env.reset(task, seed)
  const steps: Recorded['steps'] = []
  let bytes = 0
  for (;;) {
    const obs = toObs(o)
    const action = await agent.act(obs)
    steps.push({ obs, memoryDependent: o.memoryDependent, action })
    bytes = Math.max(bytes, agent.bytes())
    const r = env.step(action)
    if (r.done) return { success: r.success, steps, bytes }
    o = r
  }
}

const agrees = (a: RobotTick[], b: RobotTick[]) => Math.hypot(a[0].dx - b[0].dx, a[0].dy - b[0].dy) <= 0.2 && a[0].grip === b[0].grip
const chunkL2 = (a: RobotTick[], b: RobotTick[]) => a.reduce((s, t, k) => s + Math.hypot(t.dx - b[k].dx, t.dy - b[k].dy), 0) / a.length

/**
 * Runs the sweep: `episodes` per task, seeds 5000 + i.
 * @returns one row per configuration
 */
export async function robotFidelity(configs: RobotConfig[], episodes: number, log: (s: string) => void) {
  const reference: Recorded[] = []
  const full: RobotConfig = { model: 'robot-carried', policy: 'full', params: {}, bits: 32 }
  for (const t of TASKS)
    for (let i = 0; i < episodes; i++) {
      const e = await episode(full, t.name, 5000 + i)
      reference.push({ task: t.name, memoryTask: t.memory, steps: e.steps })
    }
  const rows = []
  for (const config of [full, ...configs]) {
    let agree = 0, n = 0, agreeMem = 0, nMem = 0, l2 = 0, bytes = 0, steps = 0
    for (const ep of reference) {
      const agent = stepper(config)
      for (const s of ep.steps) {
        const a = await agent.act(s.obs)
        const same = agrees(a, s.action) ? 1 : 0
        agree += same
        n++
        if (s.memoryDependent) (agreeMem += same), nMem++
        l2 += chunkL2(a, s.action)
        bytes += agent.bytes()
        steps++
      }
    }
    const closed = await closedLoopSuccess(TASKS, episodes, async (task, seed) => (await episode(config, task, seed)).success)
    const label = configLabel(config)
    const row = {
      ...config,
      label,
      steps: n,
      agreement: agree / n,
      agreementCI: wilson(agree, n),
      agreementMemory: agreeMem / Math.max(1, nMem),
      agreementMemoryCI: wilson(agreeMem, nMem),
      memorySteps: nMem,
      meanChunkL2: l2 / n,
      bytesPerStep: Math.round(bytes / steps),
      ...closed,
    }
    rows.push(row)
    log(`${label.padEnd(34)} agree ${(100 * row.agreement).toFixed(1).padStart(5)} %  mem-steps ${(100 * row.agreementMemory).toFixed(1).padStart(5)} %  L2 ${row.meanChunkL2.toFixed(3)}  success ${(100 * row.success).toFixed(0)} % (memory tasks ${(100 * row.memorySuccess).toFixed(0)} %)  ${row.bytesPerStep} B/step`)
  }
  return rows
}

/** Default sweep (`sweepConfigs`). Tokens per frame: 16 + 16 visual, 1 proprio, instruction bytes. */
export const robotConfigs = (framePromptTokens: number): RobotConfig[] => sweepConfigs('robot-carried', 'robot-tempo', framePromptTokens)
