/**
 * @module `npm run bench -- fidelity`: how far each memory policy's decisions drift from the full
 * cache. Episodes are recorded once with the full KV cache; every policy × budget × storage bit
 * width then replays the same observations step by step (teacher-forced), and each step's greedy
 * action and last-position logits are compared with the full cache's. Reports agreement (all steps
 * and memory-dependent steps, with Wilson 95 % intervals), mean KL(full ‖ policy) of the action
 * distribution, and serialized memory bytes per step.
 */
import { encodeMemory } from '../memory/codec.ts'
import { roundTrip, type StorageOptions } from '../memory/storage.ts'
import type { Policy, SessionMemory } from '../memory/types.ts'
import { nodeModelSource } from '../gpu/node-models.ts'
import { ortForNode } from '../gpu/ort-node.ts'
import { ModelRuntime } from '../gpu/session.ts'
import { initialMemory, policyFor, runStep } from '../worker/engine.ts'
import { textEpisodes, type EpisodeStep } from './episodes.ts'
import { wilson } from '../sim/clients/stats.ts'

/** One policy configuration of the sweep. */
export interface FidelityConfig {
  model: string
  policy: string
  params: Record<string, number>
  /** Carried tokens per layer the policy may keep (undefined: unbounded or not token-budgeted). */
  budgetTokens?: number
  /** Storage bit width: 32 (float32), 4 or 2 (KIVI). */
  bits: 32 | 4 | 2
}

/** One row of the fidelity result. */
export interface FidelityRecord extends FidelityConfig {
  label: string
  /** budgetTokens as % of the full prompt at the last step (mean over episodes). */
  budgetPct?: number
  steps: number
  agreement: number
  agreementCI: [number, number]
  memorySteps: number
  agreementMemory: number
  agreementMemoryCI: [number, number]
  meanKL: number
  bytesPerStep: number
}

const LIMITS = { maxPrefixTokens: 4096, maxMemoryTokens: 1 << 20 }

function storageOf(bits: 32 | 4 | 2): StorageOptions {
  return bits === 32 ? { dtype: 'float32' } : { dtype: 'kivi', kivi: { bits } }
}

function softmax(logits: Float32Array, from: number, vocab: number): Float64Array {
  let max = -Infinity
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[from + v])
  const p = new Float64Array(vocab)
  let sum = 0
  for (let v = 0; v < vocab; v++) sum += p[v] = Math.exp(logits[from + v] - max)
  for (let v = 0; v < vocab; v++) p[v] /= sum
  return p
}

function kl(p: Float64Array, q: Float64Array): number {
  let d = 0
  for (let v = 0; v < p.length; v++) if (p[v] > 0) d += p[v] * Math.log(p[v] / Math.max(q[v], 1e-30))
  return d
}

interface Trace {
  tokens: number[]
  probs: Float64Array[]
  bytes: number[]
  prompt: number
}

async function replay(config: FidelityConfig | { model: string; policy: 'none' }, episode: EpisodeStep[]): Promise<Trace> {
  const runtime = ModelRuntime.for(ortForNode(), nodeModelSource(config.model))
  const vocab = runtime.manifest.vocabSize
  const none = config.policy === 'none'
  const policy: Policy = policyFor(runtime.manifest, none ? 'full' : config.policy, none ? {} : (config as FidelityConfig).params)
  const storage = storageOf(none ? 32 : (config as FidelityConfig).bits)
  let mem: SessionMemory = initialMemory(runtime.manifest, policy)
  const trace: Trace = { tokens: [], probs: [], bytes: [], prompt: 0 }
  for (const [i, step] of episode.entries()) {
    const start = none ? initialMemory(runtime.manifest, policy) : mem
    const out = await runStep(runtime, start, policy, { seq: none ? 1 : i + 1, observation: { text: step.text }, options: { returnLogits: true } }, LIMITS)
    const logits = out.logits!.data
    trace.tokens.push((out.action as { token: number }).token)
    trace.probs.push(softmax(logits, logits.length - vocab, vocab))
    trace.prompt += out.prefixTokens
    const ref = { name: policy.name, params: { ...policy.params } }
    mem = roundTrip(out.memory, storage, start)
    trace.bytes.push(none ? 0 : encodeMemory(mem, { policy: ref, ...storage }).byteLength)
  }
  return trace
}

/**
 * Runs the sweep over `episodes` text episodes of `steps` steps.
 * @returns one record per configuration (the full cache itself is the first row)
 */
export async function fidelity(configs: FidelityConfig[], episodes = 20, steps = 24, log: (s: string) => void = () => {}): Promise<FidelityRecord[]> {
  const eps = textEpisodes(episodes, steps)
  const reference = []
  for (const ep of eps) reference.push(await replay({ model: 'tiny-gqa', policy: 'full', params: {}, bits: 32 }, ep))
  const rows: FidelityRecord[] = []
  const all: (FidelityConfig | { model: string; policy: 'none'; params: {}; bits: 32 })[] = [
    { model: 'tiny-gqa', policy: 'none', params: {}, bits: 32 },
    ...configs,
  ]
  for (const config of all) {
    let agree = 0, n = 0, agreeMem = 0, nMem = 0, klSum = 0, bytes = 0, pct = 0
    for (const [e, ep] of eps.entries()) {
      const trace = await replay(config as FidelityConfig, ep)
      const full = reference[e]
      ep.forEach((step, i) => {
        const same = trace.tokens[i] === full.tokens[i] ? 1 : 0
        agree += same
        n++
        if (step.memoryDependent) (agreeMem += same), nMem++
        klSum += kl(full.probs[i], trace.probs[i])
        bytes += trace.bytes[i]
      })
      if ('budgetTokens' in config && config.budgetTokens) pct += (100 * config.budgetTokens) / full.prompt
    }
    const label = config.policy === 'none' ? 'none (no memory)' : `${config.policy}${'budgetTokens' in config && config.budgetTokens ? ` ${config.budgetTokens}` : ''}${config.bits === 32 ? '' : ` kivi${config.bits}`}`
    const row: FidelityRecord = {
      ...(config as FidelityConfig),
      label,
      budgetPct: 'budgetTokens' in config && config.budgetTokens ? +(pct / eps.length).toFixed(1) : undefined,
      steps: n,
      agreement: agree / n,
      agreementCI: wilson(agree, n),
      memorySteps: nMem,
      agreementMemory: nMem ? agreeMem / nMem : NaN,
      agreementMemoryCI: wilson(agreeMem, nMem),
      meanKL: klSum / n,
      bytesPerStep: Math.round(bytes / n),
    }
    rows.push(row)
    log(`${label.padEnd(22)} agree ${(100 * row.agreement).toFixed(1).padStart(5)} %  mem-steps ${(100 * row.agreementMemory).toFixed(1).padStart(5)} %  KL ${row.meanKL.toFixed(4)}  ${row.bytesPerStep} B/step`)
  }
  return rows
}

/** The default sweep: every policy at budgets of 64, 128 and 256 tokens, storage 32/4/2 bits. */
export function defaultConfigs(): FidelityConfig[] {
  const configs: FidelityConfig[] = []
  for (const bits of [32, 4, 2] as const) configs.push({ model: 'tiny-gqa', policy: 'full', params: {}, bits })
  for (const budgetTokens of [64, 128, 256]) {
    configs.push({ model: 'tiny-gqa', policy: 'window', params: { sinkTokens: 4, recentTokens: budgetTokens - 4 }, budgetTokens, bits: 32 })
    configs.push({ model: 'tiny-gqa', policy: 'snapkv', params: { budgetTokens, observationWindow: 8 }, budgetTokens, bits: 32 })
    configs.push({ model: 'tiny-gqa', policy: 'h2o', params: { budgetTokens }, budgetTokens, bits: 32 })
    for (const bits of [32, 4, 2] as const)
      configs.push({ model: 'tiny-gqa', policy: 'guikv', params: { budgetTokens }, budgetTokens, bits })
  }
  for (const bits of [32, 4] as const) configs.push({ model: 'tiny-gqa-tempo', policy: 'tempofit', params: { frames: 8 }, bits })
  return configs
}
