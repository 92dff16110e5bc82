/**
 * @module The demo's output: a fixed-width table per suite and the `--json` document
 * `{runs: [{suite, policy, episodes, success, memorySuccess, stepMs: {p50, p95}, memoryBytes, …}]}`.
 */
import type { RunSummary } from './suites.ts'

const pct = (x: number) => `${(100 * x).toFixed(0)} %`
const ci = ([lo, hi]: [number, number]) => `(${(100 * lo).toFixed(0)}–${(100 * hi).toFixed(0)})`
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '—')
const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—')

/** The rows of one suite as a table (success with its Wilson 95 % interval). */
export function formatTable(runs: readonly RunSummary[]): string {
  const robot = runs.some((r) => r.suite === 'robot')
  const head = [
    'suite',
    'policy',
    'model',
    'episodes',
    'success (95 % CI)',
    'memory tasks (95 % CI)',
    'steps',
    'p50 ms',
    'p95 ms',
    'memory B/session',
  ]
  if (robot) head.push('deadline misses')
  const rows = runs.map((r) => {
    const cells = [
      r.suite,
      r.policy === 'memoryless' ? 'memoryless' : r.label,
      r.model,
      String(r.episodes),
      `${pct(r.success)} ${ci(r.successCi)}`,
      r.memorySuccess === null
        ? '—'
        : `${pct(r.memorySuccess)} of ${r.memoryEpisodes} ${ci(r.memorySuccessCi)}`,
      String(r.steps),
      ms(r.stepMs.p50),
      ms(r.stepMs.p95),
      int(r.memoryBytes),
    ]
    if (robot) cells.push(`${r.deadlineMisses ?? 0} of ${r.steps}`)
    return cells
  })
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((c) => c[i].length)))
  const left = new Set([0, 1, 2])
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (left.has(i) ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd()
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

/** Per-task success of each row, one line per row. */
export function formatTasks(runs: readonly RunSummary[]): string {
  return runs
    .map((r) => {
      const label = `${r.suite} ${r.policy === 'memoryless' ? 'memoryless' : r.label}`.padEnd(22)
      return `${label} ${Object.entries(r.tasks)
        .map(([t, s]) => `${t} ${pct(s)}`)
        .join(', ')}`
    })
    .join('\n')
}

/** Run settings recorded next to the rows. */
export interface DemoMeta {
  episodesPerTask: number
  seeds: number[]
  rateHz: number
  realtime: boolean
  server: string
  date: string
  wallS: number
}

/** The `--json` document. Fractions in [0, 1]; latencies in ms; memory in bytes. */
export function toJson(runs: readonly RunSummary[], meta: DemoMeta): unknown {
  return {
    meta,
    runs: runs.map((r) => ({
      suite: r.suite,
      policy: r.policy,
      model: r.model,
      params: r.params,
      episodes: r.episodes,
      success: r.success,
      successCi: r.successCi,
      memoryEpisodes: r.memoryEpisodes,
      memorySuccess: r.memorySuccess,
      memorySuccessCi: r.memorySuccessCi,
      steps: r.steps,
      stepMs: { p50: round(r.stepMs.p50), p95: round(r.stepMs.p95) },
      memoryBytes: r.memoryBytes,
      tasks: r.tasks,
      ...(r.suite === 'robot'
        ? { ticks: r.ticks, deadlineMisses: r.deadlineMisses, heldTicks: r.heldTicks }
        : {}),
      wallS: round(r.wallS),
    })),
  }
}

const round = (x: number) => Math.round(x * 10) / 10
