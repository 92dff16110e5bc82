/**
 * @module Pieces the trained-policy fidelity sweeps share (bench/robot-fidelity.ts,
 * bench/gui-fidelity.ts): storage options per bit width, the configuration label, and closed-loop
 * task success with Wilson 95 % intervals.
 */
import type { StorageOptions } from '../memory/storage.ts'
import { wilson } from '../sim/clients/stats.ts'

/** Storage of a sweep row: float32, or KIVI at 4 or 2 bits with the default options (G = R = 32,
 * tail 'residual') unless `residualTokens` / `tail` say otherwise. */
export const storageOf = (bits: 32 | 4 | 2, residualTokens?: number, tail?: 'quantized'): StorageOptions =>
  bits === 32 ? { dtype: 'float32' } : { dtype: 'kivi', kivi: { bits, ...(residualTokens !== undefined && { residualTokens }), ...(tail && { tail }) } }

/** One row of a fidelity sweep: model, policy and its params, budget (tokens), storage width. */
export interface SweepConfig<M extends string = string> {
  model: M
  policy: string
  params: Record<string, number>
  budgetTokens?: number
  bits: 32 | 4 | 2
  /** KIVI residual R (tokens kept unquantized); absent: the default, 32. */
  residualTokens?: number
  /** KIVI `tail: 'quantized'` (only the last R positions unquantized); absent: whole blocks. */
  tail?: 'quantized'
  /** Every step alone (no carried memory). */
  memoryless?: boolean
  /** Parameters set by `--set` (also in `params`), shown in the label. */
  overrides?: Record<string, number>
}

/**
 * The default sweep of both suites: full cache at 4 bits (R = 32 and R = 0) and 2 bits, memoryless, then window, SnapKV,
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
    // R = 0: only the newest partial group unquantized — the setting that reaches ≤ 1/6 of float32
    { model: carried, policy: 'full', params: {}, bits: 4, residualTokens: 0 },
    // … and with the partly filled key block quantized too: every row 4-bit
    { model: carried, policy: 'full', params: {}, bits: 4, residualTokens: 0, tail: 'quantized' },
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

/** `policy [budget] [kiviB [rR]] [key=value …] (model)`, or `memoryless …` for the run without
 * carried memory; `key=value` for parameters set by `--set`. */
export function configLabel(c: { model: string; policy: string; budgetTokens?: number; bits: 32 | 4 | 2; residualTokens?: number; tail?: 'quantized'; memoryless?: boolean; overrides?: Record<string, number> }): string {
  const kivi = c.bits === 32 ? '' : ` kivi${c.bits}${c.residualTokens !== undefined ? ` r${c.residualTokens}` : ''}${c.tail ? ' tail' : ''}`
  const set = Object.entries(c.overrides ?? {}).map(([k, v]) => ` ${k}=${v}`).join('')
  return `${c.memoryless ? 'memoryless' : c.policy}${c.budgetTokens ? ` ${c.budgetTokens}` : ''}${kivi}${set} (${c.model})`
}

/**
 * Policy parameters set from the command line (`--set guikv.subspaceRank=8,h2o.forgetting=0.9`):
 * each row of that policy gets the value in its params (and in its label).
 * @throws Error for a part that is not `policy.param=number`, or a policy no row uses
 */
export function withOverrides<C extends SweepConfig>(configs: C[], spec: string | undefined): C[] {
  if (spec === undefined) return configs
  const sets: Record<string, Record<string, number>> = {}
  for (const part of spec.split(',').map((s) => s.trim())) {
    const m = /^([a-z0-9]+)\.([A-Za-z]+)=(-?[0-9]+(?:\.[0-9]+)?)$/.exec(part)
    if (!m) throw new Error(`--set: '${part}' is not policy.param=number (e.g. guikv.subspaceRank=8)`)
    if (!configs.some((c) => c.policy === m[1])) throw new Error(`--set: no row of the sweep uses policy '${m[1]}'`)
    ;(sets[m[1]] ??= {})[m[2]] = Number(m[3])
  }
  return configs.map((c) => (sets[c.policy] ? { ...c, params: { ...c.params, ...sets[c.policy] }, overrides: sets[c.policy] } : c))
}

/** The rows of `configs` whose label contains one of the comma-separated `only` parts (all when
 * `only` is undefined; the suite's float32 full-cache reference always runs besides).
 * @throws Error when `only` is empty or one of its parts matches no row (the message lists the labels) */
export function onlyConfigs<C extends SweepConfig>(configs: C[], only: string | undefined): C[] {
  if (only === undefined) return configs
  const labels = configs.map(configLabel)
  const known = `labels: ${labels.join('; ')}; the float32 full-cache reference always runs`
  const parts = only.split(',').map((s) => s.trim())
  if (parts.some((p) => !p)) throw new Error(`--only '${only}': an empty label part (${known})`)
  for (const p of parts) if (!labels.some((l) => l.includes(p))) throw new Error(`--only: '${p}' matches no configuration (${known})`)
  return configs.filter((_, i) => parts.some((p) => labels[i].includes(p)))
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
