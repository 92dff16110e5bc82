/**
 * @module Pieces the trained-policy fidelity sweeps share (bench/robot-fidelity.ts,
 * bench/gui-fidelity.ts): storage options per bit width, the configuration label, and closed-loop
 * task success with Wilson 95 % intervals.
 */
import type { StorageOptions } from '../memory/storage.ts'
import { wilson } from '../sim/clients/stats.ts'

/** Storage of a sweep row: float32, or KIVI at 4 or 2 bits with the default options. */
export const storageOf = (bits: 32 | 4 | 2): StorageOptions => (bits === 32 ? { dtype: 'float32' } : { dtype: 'kivi', kivi: { bits } })

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
