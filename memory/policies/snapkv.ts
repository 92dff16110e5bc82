/**
 * @module The `snapkv` policy: score every carried key by the attention this step's observation
 * window (its last queries) paid to it, smoothed along tokens, and keep the top budget per head
 * plus the window itself. Recomputed each step from that step's window; nothing is carried.
 */
import { PolicyConfigError } from '../errors.ts'
import type { Policy, SessionMemory, StepInfo } from '../types.ts'
import { MAX_TOKENS, readIntParams } from './params.ts'
import { keepTopScores } from './select.ts'
import { prefixTokensOf, stepPort } from './step-ports.ts'

/**
 * SnapKV parameters (integers).
 * - `budgetTokens` : number, default=256 — rows kept per head in every layer (tokens).
 * - `observationWindow` : number, default=32 — w, the last queries whose attention scores the
 *   keys (ALGORITHMS.md; kvpress uses 64). The window lies inside one step's prefix: a step of
 *   S < w tokens uses w = S (the model's `obs_window` is fed min(w, S) too).
 * - `kernelSize` : number, default=5 — odd width of the average pooling along tokens.
 * - `sinkTokens` : number, default=0 — the first rows of the memory, always kept.
 * `observationWindow + sinkTokens ≤ budgetTokens`.
 */
export interface SnapKVOptions {
  budgetTokens?: number
  observationWindow?: number
  kernelSize?: number
  sinkTokens?: number
}

const SPEC = {
  budgetTokens: { default: 256, min: 1, max: MAX_TOKENS },
  observationWindow: { default: 32, min: 1, max: MAX_TOKENS },
  kernelSize: { default: 5, min: 1, max: MAX_TOKENS },
  sinkTokens: { default: 0, min: 0, max: MAX_TOKENS },
}

/**
 * Average pooling with 'same' zero padding (PyTorch `avg_pool1d(kernel, stride 1,
 * padding ⌊kernel/2⌋)`, count_include_pad): `out[j] = (Σ values[i], |i − j| ≤ ⌊kernel/2⌋,
 * 0 ≤ i < length) / kernel`, so the first and last ⌊kernel/2⌋ rows are averaged with zeros.
 * @param values `[length]` (a view is fine); kernel odd ≥ 1
 * @returns Float64Array `[length]`
 */
export function avgPoolSame(values: ArrayLike<number>, kernel: number): Float64Array {
  const length = values.length
  const prefix = new Float64Array(length + 1)
  for (let i = 0; i < length; i++) prefix[i + 1] = prefix[i] + values[i]
  const half = (kernel - 1) / 2
  const out = new Float64Array(length)
  for (let j = 0; j < length; j++) {
    out[j] = (prefix[Math.min(length, j + half + 1)] - prefix[Math.max(0, j - half)]) / kernel
  }
  return out
}

/**
 * SnapKV scores of one layer: per head, the window's attention to the rows before the window,
 * pooled along those rows only (the window is cut off before pooling, as in the reference), and
 * `+Infinity` for the last `windowTokens` rows (always kept).
 * @param attnWindow Float32Array `[kvHeads, tokens]`, attention mass from the window's queries
 *   (summed over them and over each KV group's query heads)
 * @param windowTokens rows at the end that form the window (0 … tokens)
 * @param kernelSize odd pooling width
 * @returns Float32Array `[kvHeads, tokens]`, high = keep
 * @see Li et al., "SnapKV: LLM Knows What You are Looking for Before Generation", arXiv:2404.14469
 */
export function snapKVScores(
  attnWindow: Float32Array,
  kvHeads: number,
  tokens: number,
  windowTokens: number,
  kernelSize: number,
): Float32Array {
  const scored = tokens - windowTokens
  const out = new Float32Array(kvHeads * tokens).fill(Infinity)
  for (let h = 0; h < kvHeads; h++) {
    const head = attnWindow.subarray(h * tokens, h * tokens + scored)
    out.set(avgPoolSame(head, kernelSize), h * tokens)
  }
  return out
}

/** Give the first `sinkTokens` rows of every head `+Infinity`. */
export function protectSinks(scores: Float32Array, kvHeads: number, tokens: number, sinks: number) {
  for (let h = 0; h < kvHeads; h++)
    scores.fill(Infinity, h * tokens, h * tokens + Math.min(sinks, tokens))
}

/**
 * SnapKV over the carried memory: after each step, per layer and head keep the
 * `budgetTokens − w − sinkTokens` rows with the highest pooled window attention, the last w rows
 * (w = min(observationWindow, S)) and the first `sinkTokens` rows. Pinned rows are always kept and
 * count toward the budget (all pins are kept even past it; see `keepTopScores`).
 * Positions stay absolute; nextPosition and seq are unchanged.
 * @param options `SnapKVOptions`
 * @throws PolicyConfigError naming a bad or unknown parameter (kernelSize even, or
 *   observationWindow + sinkTokens > budgetTokens, names observationWindow)
 * @see Li et al., "SnapKV", arXiv:2404.14469
 */
export function snapKVPolicy(options: SnapKVOptions | unknown = {}): Policy {
  const params = readIntParams('snapkv', options, SPEC)
  const { budgetTokens, observationWindow, kernelSize, sinkTokens } = params
  checkWindowParams('snapkv', params)
  return {
    name: 'snapkv',
    params,
    budgetTokens,
    observationWindow,
    requires: ['attnWindow'],
    update(mem: SessionMemory, step: StepInfo): SessionMemory {
      const window = Math.min(observationWindow, prefixTokensOf(mem, step))
      if (mem.tokens <= budgetTokens) return mem
      const scores = stepPort('snapkv', mem, step, 'attnWindow').map((attn) => {
        const score = snapKVScores(attn, mem.kvHeads, mem.tokens, window, kernelSize)
        protectSinks(score, mem.kvHeads, mem.tokens, sinkTokens)
        return score
      })
      return keepTopScores(mem, scores, budgetTokens)
    },
  }
}

/**
 * Checks shared by window-scored policies (SnapKV, GUI-KV).
 * @throws PolicyConfigError if `kernelSize` is even or the window and sinks exceed the budget
 */
export function checkWindowParams(
  policy: string,
  p: { budgetTokens: number; observationWindow: number; kernelSize: number; sinkTokens?: number },
): void {
  if (p.kernelSize % 2 === 0) {
    throw new PolicyConfigError(`${policy} policy parameter 'kernelSize' must be odd`, {
      policy,
      parameter: 'kernelSize',
      value: p.kernelSize,
    })
  }
  if (p.observationWindow + (p.sinkTokens ?? 0) > p.budgetTokens) {
    throw new PolicyConfigError(
      `${policy} policy parameter 'observationWindow' (${p.observationWindow}) plus sinkTokens (${p.sinkTokens ?? 0}) must not exceed budgetTokens (${p.budgetTokens})`,
      { policy, parameter: 'observationWindow', value: p.observationWindow },
    )
  }
}
