/**
 * @module The in-process step of the `history` bench, runtime-agnostic: the same code measures it
 * in Node (`bench/history.ts`) and inside workerd (`bench/workerd/worker.ts`). One step = encode
 * the observation, prefill against the memory, decode the action, update the memory with the
 * policy (`runStep`), then the storage round trip and the SKVM envelope encode the Durable Object
 * does before it persists (`roundTrip` + `encodeMemory`). Storage writes are not in it; the HTTP
 * figure has them.
 */
import type { Adapter } from '../agents/adapter.ts'
import type { ModelRuntime } from '../gpu/session.ts'
import { encodeMemory } from '../memory/codec.ts'
import { roundTrip, type StorageOptions } from '../memory/storage.ts'
import type { Policy, SessionMemory } from '../memory/types.ts'
import { initialMemory, policyFor, runStep } from '../worker/engine.ts'
import type { GuiObservation } from './frames.ts'
import { stackedAdapter } from './stacked.ts'

/** One configuration of the sweep. `reencode` = frame stacking (no memory carried; `policy` is
 * `full` over a fresh memory each step and nothing is persisted). */
export interface HistoryConfig {
  /** Stable id, e.g. `guikv-25-kivi4`. */
  id: string
  /** Family in the charts and the table: `reencode`, `full`, `tempofit`, `guikv-10`, `guikv-25`, `window-25`. */
  family: string
  model: string
  policy: string
  params: Record<string, number>
  /** Carried-memory budget in tokens per layer, when the policy has one. */
  budgetTokens?: number
  /** Storage width: float32 or KIVI 4-bit. */
  bits: 32 | 4
  reencode?: boolean
  /** The step layout (`EngineLimits.layout`); absent: dynamic. */
  layout?: 'fixed'
}

/** Where models come from: Node's ORT and files, or the Worker's bundled models in workerd. */
export interface StepDeps {
  runtime(model: string): ModelRuntime
  adapter(model: string): Adapter
}

/** Repetitions per point: `reps` measured after `warmup` unmeasured runs, cut short (never below
 * `minReps`) once a point has taken `maxPointMs`. */
export interface RepPlan {
  reps: number
  warmup: number
  minReps: number
  maxPointMs: number
}

/** Medians of the step's parts (ms). `codecMs` = storage round trip + envelope encode. */
export interface StepParts {
  encodeMs: number
  prefillMs: number
  decodeMs: number
  policyMs: number
  codecMs: number
}

/** One measured point: step T (the step that sees frame T with T − 1 frames of history). */
export interface MeasuredPoint {
  T: number
  /** Every measured repetition of the whole in-process step (ms). */
  samplesMs: number[]
  parts: StepParts
  /** Prefix tokens prefilled by the step (T frames for re-encoding, one frame otherwise). */
  prefillTokens: number
  /** Rows per layer the memory holds after the step (0 for re-encoding). */
  memoryTokens: number
  /** Bytes carried to the next step: the SKVM blob for carried memory; for re-encoding the T
   * frames the client must keep and resend (PNG + instruction bytes). */
  bytes: number
  /** The step's decoded action (identical across repetitions). */
  action: unknown
}

const LIMITS = { maxPrefixTokens: 1 << 20, maxMemoryTokens: 1 << 20 }
const storageOf = (bits: 32 | 4): StorageOptions => (bits === 32 ? { dtype: 'float32' } : { dtype: 'kivi', kivi: { bits: 4 } })
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

interface OneStep {
  memory: SessionMemory
  bytes: number
  totalMs: number
  parts: StepParts
  prefillTokens: number
  action: unknown
}

/** One in-process step, timed as a whole and by part. */
async function timedStep(
  runtime: ModelRuntime,
  adapter: Adapter,
  memory: SessionMemory,
  policy: Policy,
  seq: number,
  observation: Record<string, unknown>,
  storage: StorageOptions | undefined,
  now: () => number,
  layout?: 'fixed',
): Promise<OneStep> {
  const t0 = now()
  const out = await runStep(runtime, memory, policy, { seq, observation }, { ...LIMITS, layout }, adapter)
  const t1 = now()
  let kept = out.memory
  let bytes = 0
  if (storage) {
    kept = roundTrip(out.memory, storage, memory)
    bytes = encodeMemory(kept, { policy: { name: policy.name, params: { ...policy.params } }, ...storage }).byteLength
  }
  const t2 = now()
  const { encodeMs, prefillMs, decodeMs, policyMs } = out.timings
  return {
    memory: kept,
    bytes,
    totalMs: t2 - t0,
    parts: { encodeMs, prefillMs, decodeMs, policyMs, codecMs: t2 - t1 },
    prefillTokens: out.prefixTokens,
    action: out.action,
  }
}

/** Folds the measured runs of one T into a point (medians of the parts). */
function pointOf(T: number, runs: OneStep[]) {
  const last = runs[runs.length - 1]
  const part = (k: keyof StepParts) => median(runs.map((r) => r.parts[k]))
  const point = {
    T,
    samplesMs: runs.map((r) => r.totalMs),
    parts: { encodeMs: part('encodeMs'), prefillMs: part('prefillMs'), decodeMs: part('decodeMs'), policyMs: part('policyMs'), codecMs: part('codecMs') },
    prefillTokens: last.prefillTokens,
    memoryTokens: last.memory.tokens,
    bytes: last.bytes,
    action: last.action,
  }
  return point
}

/** Runs `step` warmup + reps times (see `RepPlan`) and folds the runs into a point. */
async function repeat(T: number, plan: RepPlan, now: () => number, step: () => Promise<OneStep>) {
  let last: OneStep | undefined
  for (let i = 0; i < plan.warmup; i++) last = await step()
  const runs: OneStep[] = []
  const start = now()
  while (runs.length < plan.reps && (runs.length < plan.minReps || now() - start < plan.maxPointMs)) runs.push(await step())
  if (!runs.length) runs.push(last!)
  return pointOf(T, runs)
}

/**
 * Runs the steps of several history lengths in interleaved rounds (one run of each T per round,
 * so a change in machine load hits every T alike): `warmup` unmeasured rounds, then rounds until
 * `reps`, or earlier (never below `minReps`) once the rounds have taken `maxPointMs` per T.
 */
async function interleaved(Ts: readonly number[], plan: RepPlan, now: () => number, steps: (() => Promise<OneStep>)[]) {
  for (let i = 0; i < plan.warmup; i++) for (const step of steps) await step()
  const runs: OneStep[][] = steps.map(() => [])
  const start = now()
  while (runs[0].length < plan.reps && (runs[0].length < plan.minReps || now() - start < plan.maxPointMs * steps.length))
    for (const [i, step] of steps.entries()) runs[i].push(await step())
  return Ts.map((T, i) => pointOf(T, runs[i]))
}

/**
 * Measures one configuration at every history length in `Ts`.
 * Carried configurations play frames 1 … max(Ts) through one session, keeping the memory each
 * step T in `Ts` starts from; then the steps T are repeated from those memories in interleaved
 * rounds (each round runs every T once, so machine-load drift hits all of them alike, as in the
 * codec bench). Re-encoding runs each T from scratch on frames 1 … T, one T after the other.
 * @param frames at least max(Ts) observations, in session order
 * @param Ts history lengths in frames, ascending, each ≥ 1
 * @param now a monotonic clock in ms (workerd's advances in whole ms locally)
 * @returns one point per T, in order
 * @throws RangeError when `frames` is shorter than max(Ts); engine errors as `runStep`
 */
export async function measureHistory(
  deps: StepDeps,
  config: HistoryConfig,
  frames: readonly GuiObservation[],
  Ts: readonly number[],
  plan: RepPlan,
  now: () => number = () => performance.now(),
): Promise<MeasuredPoint[]> {
  const maxT = Math.max(...Ts)
  if (frames.length < maxT) throw new RangeError(`need ${maxT} frames, got ${frames.length}`)
  const runtime = deps.runtime(config.model)
  const m = runtime.manifest
  const policy = policyFor(m, config.policy, config.params)
  const obs = (f: GuiObservation): Record<string, unknown> => ({ image: f.image, instruction: f.instruction })
  const points: MeasuredPoint[] = []
  if (config.reencode) {
    const adapter = stackedAdapter(deps.adapter(config.model))
    for (const T of Ts) {
      const window = frames.slice(0, T)
      const observation = { frames: window.map(obs) }
      const point = await repeat(T, plan, now, () =>
        timedStep(runtime, adapter, initialMemory(m, policy), policy, 1, observation, undefined, now),
      )
      point.memoryTokens = 0
      point.bytes = window.reduce((n, f) => n + f.image.byteLength + new TextEncoder().encode(f.instruction).length, 0)
      points.push(point)
    }
    return points
  }
  const adapter = deps.adapter(config.model)
  const storage = storageOf(config.bits)
  // The memory each measured step starts from (steps are pure: memory in, memory out).
  const steps: (() => Promise<OneStep>)[] = []
  let memory = initialMemory(m, policy)
  for (let T = 1; T <= maxT; T++) {
    const before = memory
    const step = () => timedStep(runtime, adapter, before, policy, T, obs(frames[T - 1]), storage, now, config.layout)
    if (Ts.includes(T)) steps.push(step)
    memory = (await step()).memory
  }
  return interleaved(Ts, plan, now, steps)
}

/**
 * The sweep of issue 7 on the GUI models: re-encoding (gui-carried, float32: nothing is stored),
 * then full, TempoFit (8 frames, gui-tempo), GUI-KV at 10 % and 25 % of the 8-frame prompt and
 * the StreamingLLM window at 25 % (4 sinks), each in float32 and KIVI 4-bit; then TempoFit and GUI-KV
 * again with the fixed step layout (ids `tempofit-fixed`, `guikv-25-fixed-kivi4`, …).
 * @param prompt8Tokens prefix tokens of the first 8 frames (the budgets' base)
 */
export function historyConfigs(prompt8Tokens: number): HistoryConfig[] {
  const b10 = Math.round(0.1 * prompt8Tokens)
  const b25 = Math.round(0.25 * prompt8Tokens)
  const out: HistoryConfig[] = [{ id: 'reencode', family: 'reencode', model: 'gui-carried', policy: 'full', params: {}, bits: 32, reencode: true }]
  for (const bits of [32, 4] as const) {
    const s = bits === 32 ? '' : '-kivi4'
    out.push({ id: `full${s}`, family: 'full', model: 'gui-carried', policy: 'full', params: {}, bits })
    out.push({ id: `tempofit${s}`, family: 'tempofit', model: 'gui-tempo', policy: 'tempofit', params: { frames: 8 }, bits })
    out.push({ id: `guikv-10${s}`, family: 'guikv-10', model: 'gui-carried', policy: 'guikv', params: { budgetTokens: b10 }, budgetTokens: b10, bits })
    out.push({ id: `guikv-25${s}`, family: 'guikv-25', model: 'gui-carried', policy: 'guikv', params: { budgetTokens: b25 }, budgetTokens: b25, bits })
    out.push({ id: `window-25${s}`, family: 'window-25', model: 'gui-carried', policy: 'window', params: { sinkTokens: 4, recentTokens: b25 - 4 }, budgetTokens: b25, bits })
  }
  // The same TempoFit and GUI-KV sessions with the fixed step layout (`StepLayout`): same memory,
  // the past padded to its full size from step 1.
  for (const c of out.filter((x) => ['tempofit', 'guikv-10', 'guikv-25'].includes(x.family)))
    out.push({ ...c, id: c.id.replace(c.family, `${c.family}-fixed`), family: `${c.family}-fixed`, layout: 'fixed' })
  return out
}

/**
 * Plays frames 1 … T of a carried configuration and returns the memory the Durable Object would
 * hold after step T (after the storage round trip).
 * @returns the memory and its SKVM blob (the configuration's storage)
 * @throws RangeError for a re-encoding configuration or too few frames
 */
export async function playSession(deps: StepDeps, config: HistoryConfig, frames: readonly GuiObservation[], T: number) {
  if (config.reencode) throw new RangeError('re-encoding carries no memory')
  if (frames.length < T) throw new RangeError(`need ${T} frames, got ${frames.length}`)
  const runtime = deps.runtime(config.model)
  const adapter = deps.adapter(config.model)
  const policy = policyFor(runtime.manifest, config.policy, config.params)
  const storage = storageOf(config.bits)
  let memory = initialMemory(runtime.manifest, policy)
  for (let t = 1; t <= T; t++) {
    const out = await runStep(runtime, memory, policy, { seq: t, observation: { image: frames[t - 1].image, instruction: frames[t - 1].instruction } }, { ...LIMITS, layout: config.layout }, adapter)
    memory = roundTrip(out.memory, storage, memory)
  }
  return { memory, blob: encodeMemory(memory, { policy: { name: policy.name, params: { ...policy.params } }, ...storage }) }
}
