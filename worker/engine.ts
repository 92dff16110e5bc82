/**
 * @module One step, without storage: encode the observation, prefill it against the carried KV
 * memory, decode the action, update the memory with the session's policy. The Durable Object
 * loads before and persists after; the engine is the same in Node and workerd.
 */
import { encodeText, greedyToken, type TokenAction } from '../agents/text.ts'
import { BadRequestError, NumericError } from '../memory/errors.ts'
import { appendPrefix } from '../memory/session.ts'
import type { Policy, SessionMemory, StepInfo } from '../memory/types.ts'
import type { HostTensor } from '../gpu/feeds.ts'
import type { HostOutput, ModelRuntime } from '../gpu/session.ts'

/** A validated step request (worker/schemas.ts). */
export interface StepRequest {
  seq: number
  observation: { text?: string; tokens?: number[] }
  options?: { returnLogits?: boolean; observationWindow?: number }
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
  action: TokenAction
  prefixTokens: number
  /** Float32Array `[S, vocab]`, only when `options.returnLogits`. */
  logits?: { dims: [number, number]; data: Float32Array }
  timings: StepTimings
}

/** Limits the engine enforces per step. */
export interface EngineLimits {
  /** Most prefix tokens one step may bring (tokens). */
  maxPrefixTokens: number
}

const now = () => performance.now()

/**
 * Runs one step: prefix tokens at positions `nextPosition …` prefilled against `memory`
 * (`past_key_values.{l}` = the carried `[kvHeads, P, headDim]`), action = greedy next token,
 * memory = policy(memory ⊕ prefix). Generated tokens are not kept (ARCHITECTURE.md, step semantics).
 * @throws BadRequestError for an invalid observation or a position past the model's `maxPosition`
 * @throws NumericError when the model produced NaN/Inf (nothing may be stored)
 * @throws FeedError if a feed disagrees with the manifest (a bug: inputs are checked before)
 */
export async function runStep(
  runtime: ModelRuntime,
  memory: SessionMemory,
  policy: Policy,
  request: StepRequest,
  limits: EngineLimits,
): Promise<StepOutcome> {
  const m = runtime.manifest
  const t0 = now()
  const prefix = encodeText(request.observation, m.vocabSize, limits.maxPrefixTokens)
  const S = prefix.inputIds.length
  const P = memory.tokens
  const start = memory.nextPosition
  if (start + S > m.maxPosition)
    throw new BadRequestError(
      `positions ${start}..${start + S - 1} exceed the model's maxPosition ${m.maxPosition}: reset the session`,
      { nextPosition: start, maxPosition: m.maxPosition },
      'position_limit',
    )
  const positions = Int32Array.from({ length: S }, (_, i) => start + i)
  const feeds: Record<string, HostTensor> = {
    input_ids: { dtype: 'int64', dims: [1, S], data: BigInt64Array.from(prefix.inputIds, BigInt) },
    position_ids: { dtype: 'int64', dims: [1, S], data: BigInt64Array.from(positions, BigInt) },
    attention_mask: { dtype: 'int64', dims: [1, P + S], data: new BigInt64Array(P + S).fill(1n) },
  }
  memory.layers.forEach((layer, l) => {
    const dims = [1, memory.kvHeads, P, memory.headDim]
    feeds[`past_key_values.${l}.key`] = { dtype: 'float32', dims, data: layer.keys }
    feeds[`past_key_values.${l}.value`] = { dtype: 'float32', dims, data: layer.values }
  })
  const window = Math.min(S, request.options?.observationWindow ?? 8)
  if (m.ports.obsWindow) feeds.obs_window = obsWindowTensor(m.inputs, window)
  const t1 = now()
  const out = await runtime.run(feeds)
  const t2 = now()
  const logits = out.logits
  assertFinite(logits, 'logits')
  const action = greedyToken(logits.data, m.vocabSize)
  const t3 = now()
  const present = memory.layers.map((_, l) => ({
    key: out[`present.${l}.key`].data,
    value: out[`present.${l}.value`].data,
  }))
  const grown = appendPrefix(memory, present, { seq: request.seq, positions, kinds: prefix.kinds })
  const info: StepInfo = {
    seq: request.seq,
    prefixTokens: S,
    attnWindow: perLayer(out, 'attn_window', memory.layers.length),
    attnTotal: perLayer(out, 'attn_total', memory.layers.length),
    hiddenNorm: perLayer(out, 'hidden_norm', memory.layers.length),
  }
  const next = policy.update(grown, info)
  const t4 = now()
  return {
    memory: next,
    action,
    prefixTokens: S,
    logits: request.options?.returnLogits
      ? { dims: [S, m.vocabSize], data: logits.data }
      : undefined,
    timings: {
      loadMs: 0,
      encodeMs: t1 - t0,
      prefillMs: t2 - t1,
      decodeMs: t3 - t2,
      policyMs: t4 - t3,
      persistMs: 0,
    },
  }
}

function obsWindowTensor(inputs: { name: string; dims: (number | string)[] }[], w: number): HostTensor {
  const port = inputs.find((p) => p.name === 'obs_window')!
  return { dtype: 'int64', dims: port.dims.map(() => 1), data: BigInt64Array.of(BigInt(w)) }
}

function perLayer(out: Record<string, HostOutput>, port: string, layers: number) {
  if (!out[`${port}.0`]) return undefined
  return Array.from({ length: layers }, (_, l) => out[`${port}.${l}`].data)
}

function assertFinite(t: HostOutput, name: string): void {
  for (let i = 0; i < t.data.length; i++)
    if (!Number.isFinite(t.data[i]))
      throw new NumericError(`model output '${name}' holds a non-finite value at index ${i}`, { output: name })
}
