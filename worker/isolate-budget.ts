/**
 * @module The isolate memory budget: a Worker isolate has 128 MB, shared by ORT's wasm heap (the
 * runtime and the loaded models' weights) and the session's memory during a step. A session whose
 * step would need more than `ISOLATE_MEMORY_BUDGET_BYTES` fails closed with 422
 * `isolate_memory_budget` before anything large is allocated, instead of running the isolate out
 * of memory — which would reset the Durable Object, and the client's retry would reset it again
 * (a crash loop). Checked twice: before a stored memory is decoded (from its stored size) and
 * before inference (from the tokens the step will hold).
 */
import { StepkvError } from '../memory/errors.ts'

/** Default budget (bytes): 96 MiB of the 128 MB isolate; the rest is ORT's wasm code and heap
 * (≈ 12 MB compiled wasm, the models' weights: 0.3–4.5 MB each) and the request itself. */
export const DEFAULT_ISOLATE_MEMORY_BUDGET_BYTES = 96 << 20

/** The deployment's budget (`ISOLATE_MEMORY_BUDGET_BYTES`; "0" = unchecked). */
export function isolateBudgetBytes(env: { ISOLATE_MEMORY_BUDGET_BYTES?: string }): number {
  const n = Number(env.ISOLATE_MEMORY_BUDGET_BYTES ?? DEFAULT_ISOLATE_MEMORY_BUDGET_BYTES)
  return Number.isSafeInteger(n) && n >= 0 ? n : DEFAULT_ISOLATE_MEMORY_BUDGET_BYTES
}

/** A model's KV shape (from its manifest). */
export interface KvShape {
  layers: number
  kvHeads: number
  headDim: number
}

/** Bytes of float32 K and V for `tokens` tokens over `layers` layers. */
export function kvBytes(shape: KvShape, tokens: number, layers = shape.layers): number {
  return tokens * layers * shape.kvHeads * shape.headDim * 4 * 2
}

/**
 * Peak bytes a step holds for the session (an estimate from above), with P past tokens fed to the
 * model (the memory's rows, or the fixed layout's padded slots, `StepLayout`) and S prefix tokens.
 * - carried KV: the decoded memory and its copy fed to ORT (2 × P), the present K/V of P + S tokens
 *   in ORT's heap and copied out (2 × (P + S)), the updated memory and its encoded blob (≤ 2 × (P + S));
 * - TempoFit: the bank of M tokens over its `bankLayers` and its feed (2 × M), the prefix's present
 *   K/V over all layers (2 × S), the next bank and its blob (≤ 2 × (M + S) over `bankLayers`).
 */
export function stepWorkingSetBytes(shape: KvShape, memoryTokens: number, prefixTokens: number, bankLayers?: number): number {
  const P = memoryTokens
  const S = prefixTokens
  if (bankLayers === undefined) return 2 * kvBytes(shape, P) + 4 * kvBytes(shape, P + S)
  return 2 * kvBytes(shape, P, bankLayers) + 2 * kvBytes(shape, S) + 2 * kvBytes(shape, P + S, bankLayers)
}

/** How many times larger a stored blob gets when decoded to float32 (and the blob is held too). */
export function decodeFactor(memoryDtype: 'float32' | 'float16' | 'kivi', kiviBits = 4): number {
  if (memoryDtype === 'float16') return 2 + 1
  if (memoryDtype === 'kivi') return 32 / kiviBits + 1
  return 1 + 1
}

/**
 * @param needBytes the estimate; @param budgetBytes the budget (0: unchecked)
 * @throws StepkvError `isolate_memory_budget` (422) naming both and what to do
 */
export function checkIsolateBudget(needBytes: number, budgetBytes: number, what: string): void {
  if (budgetBytes <= 0 || needBytes <= budgetBytes) return
  throw new StepkvError(
    'isolate_memory_budget',
    422,
    `${what} would need about ${needBytes} bytes, over this deployment's isolate memory budget of ${budgetBytes} bytes: reset the session, roll back, or use a bounded policy (window, snapkv, h2o, guikv, tempofit) or KIVI storage`,
    { needBytes, budgetBytes },
  )
}
