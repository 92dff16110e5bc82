/**
 * @module Pieces the trained-policy fidelity sweeps share (bench/robot-fidelity.ts,
 * bench/gui-fidelity.ts): storage options per bit width, the configuration label, and closed-loop
 * task success with Wilson 95 % intervals.
 */
import type { StorageOptions } from '../memory/storage.ts'
import { wilson } from '../sim/clients/stats.ts'

/** Storage of a sweep row: float32, or KIVI at 4 or 2 bits with the default options. */
export const storageOf = (bits: 32 | 4 | 2): StorageOptions => (bits === 32 ? { dtype: 'float32' } : { dtype: 'kivi', kivi: { bits } })

/** One row of a fidelity sweep: model, policy and its params, budget (tokens), storage width. */
export interface SweepConfig<M extends string = string> {
  model: M
  policy: string
  params: Record<string, number>
  budgetTokens?: number
  bits: 32 | 4 | 2
  /** Every step alone (no carried memory). */
  memoryless?: boolean
}

/**
 * The default sweep of both suites: full cache at 4 and 2 bits, memoryless, then window, SnapKV,
 * H2O, GUI-KV and GUI-KV + KIVI 4-bit at budgets of 10 % and 25 % of an 8-frame prompt (tokens),
 * and TempoFit (8 frames) at 32 and 4 bits on the TempoFit model. The full-cache float32 reference
 * is recorded by the sweep itself.
 * @param framePromptTokens tokens of one step's prefix (mean over tasks)
 */
export function sweepConfigs<C extends string, T extends string>(carried: C, tempo: T, framePromptTokens: number): SweepConfig<C | T>[] {
  const b10 = Math.round(0.1 * 8 * framePromptTokens)
  const b25 = Math.round(0.25 * 8 * framePromptTokens)
  const out: SweepConfig<C | T>[] = [
    { model: carried, policy: 'full', params: {}, bits: 4 },
    { model: carried, policy: 'full', params: {}, bits: 2 },
    { model: carried, policy: 'full', params: {}, bits: 32, memoryless: true },
  ]
  for (const budgetTokens of [b10, b25]) {
    out.push({ model: carried, policy: 'window', params: { sinkTokens: 4, recentTokens: budgetTokens - 4 }, budgetTokens, bits: 32 })
    out.push({ model: carried, policy: 'snapkv', params: { budgetTokens, observationWindow: 8 }, budgetTokens, bits: 32 })
    out.push({ model: carried, policy: 'h2o', params: { budgetTokens }, budgetTokens, bits: 32 })
    out.push({ model: carried, policy: 'guikv', params: { budgetTokens }, budgetTokens, bits: 32 })
    out.push({ model: carried, policy: 'guikv', params: { budgetTokens }, budgetTokens, bits: 4 })
  }
  out.push({ model: tempo, policy: 'tempofit', params: { frames: 8 }, bits: 32 })
  out.push({ model: tempo, policy: 'tempofit', params: { frames: 8 }, bits: 4 })
  return out
}

/** `policy [budget] [kiviB] (model)`, or `memoryless …` for the run without carried memory. */
export function configLabel(c: { model: string; policy: string; budgetTokens?: number; bits: 32 | 4 | 2; memoryless?: boolean }): string {
  return `${c.memoryless ? 'memoryless' : c.policy}${c.budgetTokens ? ` ${c.budgetTokens}` : ''}${c.bits === 32 ? '' : ` kivi${c.bits}`} (${c.model})`
}

/**
 * Closed-loop success over `episodes` seeds (5000 + i) of every task, memory tasks separately.
 * @param run plays one episode; `index` counts episodes in task-major order from 0
 */
export async function closedLoopSuccess(
  tasks: readonly { name: string; memory: boolean }[],
  episodes: number,
  run: (task: string, seed: number, index: number) => Promise<boolean>,
) {
  let wins = 0, runs = 0, winsMem = 0, runsMem = 0
  for (const t of tasks)
    for (let i = 0; i < episodes; i++) {
      const success = await run(t.name, 5000 + i, runs)
      wins += +success
      runs++
      if (t.memory) (winsMem += +success), runsMem++
    }
  return {
    success: wins / runs,
    successCI: wilson(wins, runs),
    memorySuccess: winsMem / runsMem,
    memorySuccessCI: wilson(winsMem, runsMem),
    episodes: runs,
  }
}
