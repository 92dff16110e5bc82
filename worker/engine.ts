/**
 * @module One step, without storage: encode the observation, prefill it against the session's
 * memory, decode the action, update the memory with the session's policy. The Durable Object
 * loads before and persists after; the engine is the same in Node and workerd.
 *
 * Two memory kinds (ARCHITECTURE.md, step semantics):
 * - carried KV (full, window, SnapKV, H2O, GUI-KV): the memory is the pruned KV cache of past
 *   prefixes, fed as `past_key_values`; the prefix continues at `nextPosition`.
 * - TempoFit: nothing is carried as past KV; the prefix is prefilled fresh (positions 0…S−1) and
 *   the bank of the last N frames' pre-RoPE K/V enters through the model's `tempo.{l}` ports.
 */
import type { Adapter } from '../agents/adapter.ts'
import { textAdapter } from '../agents/text.ts'
import { BadRequestError, NumericError, PolicyConfigError, StepkvError } from '../memory/errors.ts'
import { createPolicy } from '../memory/policies/index.ts'
import { tempoBiasFor } from '../memory/policies/tempofit.ts'
import { appendPrefix, emptyMemory, padRows, realRows } from '../memory/session.ts'
import { PINNED, type Policy, type SessionMemory, type StepInfo } from '../memory/types.ts'
import { firstNonFinite, firstNonFiniteNewRows } from '../memory/validate.ts'
import type { HostTensor } from '../gpu/feeds.ts'
import type { ModelManifest } from '../gpu/manifest.ts'
import type { HostOutput, ModelRuntime } from '../gpu/session.ts'
import { checkIsolateBudget, stepWorkingSetBytes } from './isolate-budget.ts'

/** A validated step request (worker/schemas.ts). */
export interface StepRequest {
  seq: number
  /** What the adapter reads: `{text}`/`{tokens}` for the plain decoder; image(s), instruction and
   * proprio for the GUI and robot adapters. */
  observation: Record<string, unknown>
  options?: {
    returnLogits?: boolean
    observationWindow?: number
    /** Pin this step's whole prefix (e.g. the task instruction): no policy evicts it. */
    pin?: boolean
    /** Pin token ranges `[start, end)` of this step's prefix. */
    pinSpans?: [number, number][]
  }
}

/** Step timings in ms (`loadMs`, `persistMs` are filled by the Durable Object). */
export interface StepTimings {
  loadMs: number
  encodeMs: number
  prefillMs: number
  decodeMs: number
  policyMs: number
  persistMs: number
}

/** What a step produced, before persistence. */
export interface StepOutcome {
  memory: SessionMemory
  action: unknown
  prefixTokens: number
  /** Float32Array `[S, vocab]`, only when `options.returnLogits`. */
  logits?: { dims: [number, number]; data: Float32Array }
  timings: StepTimings
}

/** Most tokens per layer a session's memory may hold when the deployment sets no limit
 * (`MAX_MEMORY_TOKENS`). */
export const DEFAULT_MAX_MEMORY_TOKENS = 65_536

/** Limits the engine enforces per step. */
export interface EngineLimits {
  /** Most prefix tokens one step may bring (tokens). */
  maxPrefixTokens: number
  /** Most tokens per layer the memory may hold after a step (tokens); default `DEFAULT_MAX_MEMORY_TOKENS`. A policy
   * with no budget (full) fails closed here rather than growing until the isolate runs out. */
  maxMemoryTokens?: number
  /** The isolate memory budget (bytes, `isolate-budget.ts`): a step whose working set would exceed
   * it fails closed before inference; absent or 0: unchecked. */
  isolateBudgetBytes?: number
  /** The step's shape layout (`StepLayout`); default 'dynamic'. */
  layout?: StepLayout
}

/**
 * How the past is laid out in a step's feeds.
 * - `dynamic` (default): exactly the rows the memory holds: a step costs less while a bounded
 *   memory is still filling.
 * - `fixed`: the past padded with masked slots to the size it has once full, so every step of a
 *   session costs the same from step 1 (a control loop budgets one step time; static-shape
 *   serving does the same) — as long as every frame brings as many tokens and pins do not push
 *   the memory past the budget (then the past grows as under `dynamic`). Carried KV:
 *   `max(policy.budgetTokens, P)` past slots, padding masked by `attention_mask` = 0; TempoFit:
 *   `max(frames · max(S, tokens of the bank's largest frame), bank rows)` bank slots, padding with
 *   `tempo_bias` = −∞ (the contract's empty slot). The padding is cut from the outputs before the
 *   policy runs, so the policy sees what it sees under `dynamic`: the same kept rows, and K/V and
 *   logits equal to the dynamic step's up to float32 summation order (≤ 1e-5,
 *   `test/worker/layout.test.ts`), so a decision on a near-tie could differ.
 */
export type StepLayout = 'dynamic' | 'fixed'

/**
 * Checks that `policy` can run with `layout`: the fixed layout needs a bounded memory (a policy
 * with `budgetTokens`, or TempoFit's bank), and, given `fit`, a budget whose padded past every
 * step can hold: within `maxMemoryTokens` and, with one prefix token, within the isolate memory
 * budget (`stepWorkingSetBytes`). Checked at session creation and policy change, so a session
 * that could never step is refused there.
 * @param fit the model and the deployment's limits (tokens, bytes); absent: only boundedness
 * @throws PolicyConfigError (`invalid_policy`, 400) for `fixed` with an unbounded policy (full),
 *   or with a budget over `maxMemoryTokens` or whose padded step exceeds `isolateBudgetBytes`
 */
export function checkLayoutFits(
  policy: Policy,
  layout: StepLayout | undefined,
  fit?: { manifest: ModelManifest; maxMemoryTokens?: number; isolateBudgetBytes?: number },
): void {
  if (layout !== 'fixed') return
  if (policy.memory !== 'tempo' && policy.budgetTokens === undefined)
    throw new PolicyConfigError(
      `layout 'fixed' pads the past to the policy's budget, and policy '${policy.name}' has none: use a bounded policy (window, snapkv, h2o, guikv, tempofit) or layout 'dynamic'`,
      { policy: policy.name, layout },
    )
  const budget = policy.budgetTokens
  if (!fit || budget === undefined) return
  const maxMemory = fit.maxMemoryTokens ?? DEFAULT_MAX_MEMORY_TOKENS
  if (budget > maxMemory)
    throw new PolicyConfigError(
      `layout 'fixed' pads every step's past to the budget of ${budget} tokens, over the session limit of ${maxMemory} tokens: use a smaller budget or layout 'dynamic'`,
      { policy: policy.name, layout, budgetTokens: budget, limit: maxMemory },
    )
  const need = stepWorkingSetBytes(fit.manifest, budget, 1)
  if (fit.isolateBudgetBytes && need > fit.isolateBudgetBytes)
    throw new PolicyConfigError(
      `layout 'fixed' pads every step's past to the budget of ${budget} tokens, which needs about ${need} bytes per step, over this deployment's isolate memory budget of ${fit.isolateBudgetBytes} bytes: use a smaller budget or layout 'dynamic'`,
      { policy: policy.name, layout, budgetTokens: budget, needBytes: need, budgetBytes: fit.isolateBudgetBytes },
    )
}

const PORT_FLAGS = { attnWindow: 'attnWindow', attnTotal: 'attnTotal', hiddenNorm: 'hiddenNorm', tempo: 'tempo' } as const

/**
 * Checks that `manifest`'s model has every optional port `policy` reads.
 * @throws PolicyConfigError (`policy_unsupported`, 400) naming the missing port
 */
export function checkPolicyFits(manifest: ModelManifest, policy: Policy): void {
  for (const need of policy.requires ?? []) {
    if (!manifest.ports[PORT_FLAGS[need]])
      throw new PolicyConfigError(
        `policy '${policy.name}' needs the model port '${need}', which model '${manifest.id}' does not have`,
        { policy: policy.name, port: need, model: manifest.id },
      )
  }
  if (policy.memory === 'tempo' && manifest.tempoLayers.length === 0)
    throw new PolicyConfigError(`model '${manifest.id}' has no TempoFit layers`, { policy: policy.name })
}

/**
 * Creates the session's policy with the model-dependent defaults filled in: GUI-KV's
 * `queryGroupSize` = heads / kvHeads (the model's `attn_window` sums each KV group's query heads;
 * the reference averages them).
 * @throws PolicyConfigError as `createPolicy`, or when the model lacks a port the policy reads
 */
export function policyFor(manifest: ModelManifest, name: string, params: Record<string, unknown>): Policy {
  const groupSize = manifest.heads / manifest.kvHeads
  if (name === 'guikv' && params.queryGroupSize !== undefined && params.queryGroupSize !== groupSize)
    throw new PolicyConfigError(
      `guikv policy parameter 'queryGroupSize' must be ${groupSize} for model '${manifest.id}' (${manifest.heads} heads over ${manifest.kvHeads} KV heads), got ${String(params.queryGroupSize)}`,
      { policy: name, parameter: 'queryGroupSize' },
    )
  const filled = name === 'guikv' ? { ...params, queryGroupSize: groupSize } : params
  const policy = createPolicy(name, filled)
  checkPolicyFits(manifest, policy)
  return policy
}

/** The empty memory a new session of `policy` on `manifest` starts with: an empty KV cache of every
 * layer, or an empty TempoFit bank of the model's memory layers. */
export function initialMemory(manifest: ModelManifest, policy: Policy): SessionMemory {
  const model = { id: manifest.id, sha256: manifest.sha256 }
  const shape = { model, kvHeads: manifest.kvHeads, headDim: manifest.headDim }
  if (policy.memory !== 'tempo') return emptyMemory({ ...shape, layers: manifest.layers })
  return { ...emptyMemory({ ...shape, layers: manifest.tempoLayers.length }), layerIds: [...manifest.tempoLayers] }
}

const now = () => performance.now()

/**
 * Runs one step: the prefix prefilled against `memory`, action = greedy next token, memory =
 * policy(memory ⊕ prefix). Generated tokens are not kept (ARCHITECTURE.md, step semantics).
 * @throws BadRequestError for an invalid observation or a position past the model's `maxPosition`;
 *   StepkvError `too_many_tokens` (413) for a prefix over `limits.maxPrefixTokens`,
 *   `isolate_memory_budget` (422) when the step's working set would exceed `limits.isolateBudgetBytes`
 * @throws NumericError when the model produced NaN/Inf in the logits, this step's K/V rows or
 *   TempoFit prefix K/V (nothing may be stored)
 * @throws FeedError if a feed disagrees with the manifest (a bug: inputs are checked before)
 * @param onStage called between inference and the policy update (fault tests, `faults.ts`)
 */
export async function runStep(
  runtime: ModelRuntime,
  memory: SessionMemory,
  policy: Policy,
  request: StepRequest,
  limits: EngineLimits,
  adapter: Adapter = textAdapter(runtime.manifest.vocabSize, limits.maxPrefixTokens),
  onStage?: (stage: 'infer-policy') => void,
): Promise<StepOutcome> {
  const m = runtime.manifest
  const tempo = policy.memory === 'tempo'
  const fixed = limits.layout === 'fixed'
  if (fixed) checkLayoutFits(policy, 'fixed')
  const t0 = now()
  const prefix = await encodeStepPrefix(adapter, request, limits)
  const S = prefix.tokens
  const P = tempo ? 0 : memory.tokens
  // Past slots fed (C ≥ P; C − P masked padding rows) and, for TempoFit, bank slots (M ≥ bank rows).
  const C = fixed && !tempo ? Math.max(policy.budgetTokens!, P) : P
  const M = tempo ? (fixed ? fixedBankSlots(memory, policy, S) : memory.tokens) : 0
  const fed = tempo ? M : C // past or bank slots the model reads
  if (limits.isolateBudgetBytes)
    checkIsolateBudget(
      stepWorkingSetBytes(m, fed, S, tempo ? memory.layers.length : undefined),
      limits.isolateBudgetBytes,
      `step ${request.seq} (${memory.tokens} memory tokens${fed > memory.tokens ? ` in ${fed} fixed-layout ${tempo ? 'bank' : 'past'} slots` : ''} + ${S} prefix tokens)`,
    )
  const positions = stepPositions(tempo ? 0 : memory.nextPosition, S, m)
  const mask = new BigInt64Array(C + S).fill(1n)
  mask.fill(0n, P, C)
  const feeds: Record<string, HostTensor> = {
    ...(prefix.inputsEmbeds
      ? { inputs_embeds: { dtype: 'float32', dims: [1, S, m.hiddenSize], data: prefix.inputsEmbeds } }
      : { input_ids: { dtype: 'int64', dims: [1, S], data: BigInt64Array.from(prefix.inputIds!, BigInt) } }),
    position_ids: { dtype: 'int64', dims: [1, S], data: BigInt64Array.from(positions, BigInt) },
    attention_mask: { dtype: 'int64', dims: [1, C + S], data: mask },
  }
  const kvDims = [1, m.kvHeads, C, m.headDim]
  for (let l = 0; l < m.layers; l++) {
    const layer = tempo ? undefined : memory.layers[l]
    const rows = (x: Float32Array | undefined) => (x ? padRows(x, m.kvHeads, P, C, m.headDim) : new Float32Array(0))
    feeds[`past_key_values.${l}.key`] = { dtype: 'float32', dims: kvDims, data: rows(layer?.keys) }
    feeds[`past_key_values.${l}.value`] = { dtype: 'float32', dims: kvDims, data: rows(layer?.values) }
  }
  if (m.ports.tempo) addTempoFeeds(feeds, m, tempo ? memory : undefined, request.seq, policy, M)
  const window = stepWindow(policy, request, S)
  if (m.ports.obsWindow) feeds.obs_window = obsWindowTensor(m.inputs, window)
  const t1 = now()
  const out = C > P ? unpadOutputs(await runtime.run(feeds), m, P, C, S) : await runtime.run(feeds)
  const t2 = now()
  const logits = out.logits
  assertFinite(logits, 'logits')
  const action = adapter.decode(logits.data.subarray(logits.data.length - m.vocabSize))
  const t3 = now()
  onStage?.('infer-policy')
  const info: StepInfo = {
    seq: request.seq,
    prefixTokens: S,
    kinds: prefix.kinds,
    attnWindow: perLayer(out, 'attn_window', m.layers),
    attnTotal: perLayer(out, 'attn_total', m.layers),
    hiddenNorm: perLayer(out, 'hidden_norm', m.layers),
  }
  let next: SessionMemory
  if (tempo) {
    info.tempoPrefix = m.tempoLayers.map((l) => ({
      key: finite(out[`tempo_prefix.${l}.key`]),
      value: finite(out[`tempo_prefix.${l}.value`]),
    }))
    next = policy.update(memory, info)
  } else {
    const present = memory.layers.map((_, l) => ({
      key: newRowsFinite(out[`present.${l}.key`].data, m.kvHeads, P, S, m.headDim, `present.${l}.key`),
      value: newRowsFinite(out[`present.${l}.value`].data, m.kvHeads, P, S, m.headDim, `present.${l}.value`),
    }))
    // The runtime's outputs are fresh host copies that nothing else holds: the memory takes them
    // as they are (no copy; the new rows were checked just above, the carried ones when they entered).
    next = policy.update(appendPrefix(memory, present, { seq: request.seq, positions, kinds: prefix.kinds }, { adopt: true }), info)
  }
  const t4 = now()
  const over = memoryLimitError(next.tokens, limits)
  if (over) throw over
  return {
    memory: next,
    action,
    prefixTokens: S,
    logits: request.options?.returnLogits ? { dims: [S, m.vocabSize], data: logits.data } : undefined,
    timings: { loadMs: 0, encodeMs: t1 - t0, prefillMs: t2 - t1, decodeMs: t3 - t2, policyMs: t4 - t3, persistMs: 0 },
  }
}

/**
 * This step's prefix: the adapter's encoding of `request.observation` (`[S]` tokens, their kinds
 * and, for agent models, `inputs_embeds` `[S, hiddenSize]`), with the PINNED bit set on the tokens
 * `request.options` pins. Shared by the Worker's step and the GPU host's resident step.
 * @throws StepkvError `too_many_tokens` (413) over `limits.maxPrefixTokens`; BadRequestError from the
 *   adapter (`invalid_observation`, `invalid_image`) and for a pin span out of range (`invalid_pin`)
 */
export async function encodeStepPrefix(adapter: Adapter, request: StepRequest, limits: EngineLimits) {
  const prefix = await adapter.encode(request.observation).catch((e: unknown) => {
    // The adapters refuse an over-long observation as they tokenize; the limit is a 413 here.
    if (e instanceof StepkvError && e.code === 'too_many_tokens') throw new StepkvError(e.code, 413, e.message, e.details)
    throw e
  })
  const S = prefix.tokens
  if (S > limits.maxPrefixTokens)
    throw new StepkvError('too_many_tokens', 413, `the prefix has ${S} tokens, the limit per step is ${limits.maxPrefixTokens}`, { tokens: S, limit: limits.maxPrefixTokens })
  pinKinds(prefix.kinds, request.options)
  return prefix
}

/**
 * The 422 `memory_limit` problem when a memory of `tokens` per layer passes
 * `limits.maxMemoryTokens` (default 65,536), else null (the caller releases what it holds, then throws).
 */
export function memoryLimitError(tokens: number, limits: EngineLimits): StepkvError | null {
  const maxMemory = limits.maxMemoryTokens ?? DEFAULT_MAX_MEMORY_TOKENS
  if (tokens <= maxMemory) return null
  return new StepkvError(
    'memory_limit',
    422,
    `the memory would hold ${tokens} tokens per layer, over the session limit of ${maxMemory} tokens: use a bounded policy (window, snapkv, h2o, guikv, tempofit) or reset`,
    { tokens, limit: maxMemory },
  )
}

/**
 * The observation window w of a step of S prefix tokens (tokens): the policy's own, else the
 * request's `options.observationWindow`, else 8 (the GUI-KV reference scripts), at most S.
 */
export function stepWindow(policy: Policy, request: StepRequest, S: number): number {
  return Math.min(S, policy.observationWindow ?? request.options?.observationWindow ?? 8)
}

/**
 * Positions `start … start + S − 1` of this step's prefix tokens (`Int32Array [S]`).
 * @throws BadRequestError `position_limit` when they pass the model's `maxPosition`
 */
export function stepPositions(start: number, S: number, m: ModelManifest): Int32Array {
  if (start + S > m.maxPosition)
    throw new BadRequestError(
      `positions ${start}..${start + S - 1} exceed the model's maxPosition ${m.maxPosition}: reset the session`,
      { nextPosition: start, maxPosition: m.maxPosition },
      'position_limit',
    )
  return Int32Array.from({ length: S }, (_, i) => start + i)
}

/** Sets the PINNED bit on pinned prefix tokens. @throws BadRequestError for a span out of range */
function pinKinds(kinds: Uint8Array, options: StepRequest['options']): void {
  if (options?.pin) for (let i = 0; i < kinds.length; i++) kinds[i] |= PINNED
  for (const [start, end] of options?.pinSpans ?? []) {
    if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= kinds.length))
      throw new BadRequestError(`pin span [${start}, ${end}) is outside the prefix of ${kinds.length} tokens`, {}, 'invalid_pin')
    for (let i = start; i < end; i++) kinds[i] |= PINNED
  }
}

/** Feeds the TempoFit ports: the bank per memory layer and its Frame-Gap Temporal Bias, padded to
 * `M` slots (≥ the bank's rows; padding rows 0 with bias −∞, the contract's empty slot); an empty
 * bank (M = 0) for sessions whose policy does not use the ports. */
function addTempoFeeds(feeds: Record<string, HostTensor>, m: ModelManifest, bank: SessionMemory | undefined, seq: number, policy: Policy, M: number) {
  const rows = bank?.tokens ?? 0
  const dims = [1, m.kvHeads, M, m.headDim]
  const pad = (x: Float32Array | undefined) => (x ? padRows(x, m.kvHeads, rows, M, m.headDim) : new Float32Array(0))
  m.tempoLayers.forEach((l, i) => {
    feeds[`tempo.${l}.key`] = { dtype: 'float32', dims, data: pad(bank?.layers[i].keys) }
    feeds[`tempo.${l}.value`] = { dtype: 'float32', dims, data: pad(bank?.layers[i].values) }
  })
  const real = bank ? tempoBiasFor(bank, seq, policy.params) : new Float32Array(0)
  const bias = M === rows ? real : padRows(real, m.kvHeads, rows, M, 1, -Infinity)
  feeds.tempo_bias = { dtype: 'float32', dims: [1, m.kvHeads, 1, M], data: bias }
}

/** Bank slots of TempoFit's fixed layout: `frames · max(S, rows of the bank's largest frame)`, at
 * least the bank's rows (tokens; the bank's size once full when every frame brings as many tokens
 * as its largest). */
function fixedBankSlots(bank: SessionMemory, policy: Policy, S: number): number {
  const frames = Number(policy.params.frames)
  let largest = S
  if (bank.tokens > 0) {
    const f = bank.layers[0].frames // head 0's rows: every head holds the same frames
    let run = 1
    for (let j = 1; j <= bank.tokens; j++) {
      if (j < bank.tokens && f[j] === f[j - 1]) run++
      else {
        largest = Math.max(largest, run)
        run = 1
      }
    }
  }
  return Math.max(frames * largest, bank.tokens)
}

/** Cuts the C − P padding slots out of a fixed-layout step's outputs (`realRows`): `present.{l}.*`
 * `[1, Hkv, C + S, Dh]` and `attn_window.{l}` / `attn_total.{l}` `[1, Hkv, C + S]` become
 * `P + S` long; other outputs (logits, hidden_norm, tempo_prefix) have no past axis. */
function unpadOutputs(out: Record<string, HostOutput>, m: ModelManifest, P: number, C: number, S: number): Record<string, HostOutput> {
  const H = m.kvHeads
  const cut = (t: HostOutput, d: number): HostOutput => ({
    dims: t.dims.length === 4 ? [1, H, P + S, d] : [1, H, P + S],
    data: realRows(t.data, H, P, C, S, d),
  })
  const res: Record<string, HostOutput> = { ...out }
  for (let l = 0; l < m.layers; l++) {
    for (const name of [`present.${l}.key`, `present.${l}.value`]) if (out[name]) res[name] = cut(out[name], m.headDim)
    for (const name of [`attn_window.${l}`, `attn_total.${l}`]) if (out[name]) res[name] = cut(out[name], 1)
  }
  return res
}

function obsWindowTensor(inputs: { name: string; dims: (number | string)[] }[], w: number): HostTensor {
  const port = inputs.find((p) => p.name === 'obs_window')!
  return { dtype: 'int64', dims: port.dims.map(() => 1), data: BigInt64Array.of(BigInt(w)) }
}

function perLayer(out: Record<string, HostOutput>, port: string, layers: number) {
  if (!out[`${port}.0`]) return undefined
  return Array.from({ length: layers }, (_, l) => out[`${port}.${l}`].data)
}

function finite(t: HostOutput): Float32Array {
  assertFinite(t, 'tempo_prefix')
  return t.data
}

/** `present` `[heads, P + S, d]` after checking its S new rows per head finite (the rows that enter
 * the memory here: the P carried ones were checked when they entered, `decodeMemory` `trusted`).
 * @throws NumericError naming the output and index of the first non-finite value */
function newRowsFinite(present: Float32Array, heads: number, P: number, S: number, d: number, name: string): Float32Array {
  const bad = firstNonFiniteNewRows(present, heads, P, S, d)
  if (bad >= 0) throw new NumericError(`model output '${name}' holds a non-finite value at index ${bad}`, { output: name })
  return present
}

function assertFinite(t: HostOutput, name: string): void {
  finiteFrom(t.data, 0, t.data.length, name)
}

/** @throws NumericError naming output `name` and the index (into `data`) of the first non-finite
 * value of `data[from … to)` (`firstNonFinite`) */
function finiteFrom(data: Float32Array, from: number, to: number, name: string): void {
  const bad = firstNonFinite(data.subarray(from, to))
  if (bad >= 0) throw new NumericError(`model output '${name}' holds a non-finite value at index ${from + bad}`, { output: name })
}
