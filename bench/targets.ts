/**
 * @module Issue 7's targets as ratios measured in one run (reported, not asserted): flat step cost
 * in history length, speed-up over re-encoding, memory size, codec throughput against
 * allocate-and-copy, and workerd against Node.
 */
import type { LatencySummary } from './stats.ts'

/** Where a latency was measured. */
export type Runtime = 'node' | 'workerd' | 'http'

/** One point of the history bench (the fields the targets read). */
export interface HistoryRecord {
  config: string
  family: string
  policy: string
  T: number
  runtime: Runtime
  stepMs: LatencySummary
  /** Bytes carried to the next step (the serialized memory; frames for re-encoding). */
  bytes: number
}

/** A target's outcome: `ratio` compared with `limit` (`≤` or `≥`); `met` is false when unmeasured. */
export interface TargetResult {
  id: string
  what: string
  ratio: number | null
  limit: number
  comparison: '≤' | '≥'
  met: boolean
  detail?: string
}

const round3 = (x: number) => Math.round(x * 1000) / 1000

function target(id: string, what: string, ratio: number | null, comparison: '≤' | '≥', limit: number, detail?: string): TargetResult {
  const met = ratio !== null && Number.isFinite(ratio) && (comparison === '≤' ? ratio <= limit : ratio >= limit)
  return { id, what, ratio: ratio === null ? null : round3(ratio), limit, comparison, met, ...(detail && { detail }) }
}

/** The record of `config` at `T` on `runtime`, if measured. */
export function findRecord(records: readonly HistoryRecord[], config: string, T: number, runtime: Runtime = 'node') {
  return records.find((r) => r.config === config && r.T === T && r.runtime === runtime)
}

/**
 * The history targets (latencies are p50s of the in-process step on `runtime`):
 * - `flat-<config>`: p50(T = 64) / p50(T = 1) ≤ 1.2, for every TempoFit and GUI-KV configuration;
 * - `vs-reencode-<config>`: p50(re-encoding, T = 32) / p50(config, T = 32) ≥ 10;
 * - `memory-guikv25-kivi4`: bytes(guikv-25-kivi4, T = 32) / bytes(full float32, T = 32) ≤ 1/8;
 * - `workerd-vs-node`: geometric mean over every point measured in both of p50(workerd) /
 *   p50(node) ≤ 1.3 (the detail gives the worst point and how many exceed 1.3).
 * @param records every record of the run
 * @returns one result per target; a ratio is null (and the target not met) when a point is missing
 */
export function historyTargets(records: readonly HistoryRecord[], runtime: Runtime = 'node'): TargetResult[] {
  const out: TargetResult[] = []
  const configs = [...new Set(records.filter((r) => r.policy === 'tempofit' || r.policy === 'guikv').map((r) => r.config))]
  for (const c of configs) {
    const [t1, t64] = [findRecord(records, c, 1, runtime), findRecord(records, c, 64, runtime)]
    out.push(target(`flat-${c}`, `${c}: step p50 at T = 64 / at T = 1 (${runtime})`, t1 && t64 ? t64.stepMs.p50 / t1.stepMs.p50 : null, '≤', 1.2))
  }
  const re32 = findRecord(records, 'reencode', 32, runtime)
  for (const c of configs) {
    const r = findRecord(records, c, 32, runtime)
    out.push(target(`vs-reencode-${c}`, `re-encoding p50 / ${c} p50 at T = 32 (${runtime})`, re32 && r ? re32.stepMs.p50 / r.stepMs.p50 : null, '≥', 10))
  }
  const small = findRecord(records, 'guikv-25-kivi4', 32, runtime)
  const full = findRecord(records, 'full', 32, runtime)
  out.push(target('memory-guikv25-kivi4', 'serialized memory at T = 32: GUI-KV 25 % + KIVI 4-bit / float32 full cache', small && full ? small.bytes / full.bytes : null, '≤', 1 / 8))
  out.push(workerdVsNode(records))
  return out
}

/** workerd p50 / Node p50 over every (config, T) measured in both. */
export function workerdVsNode(records: readonly HistoryRecord[]): TargetResult {
  const ratios: { ratio: number; at: string }[] = []
  for (const w of records.filter((r) => r.runtime === 'workerd')) {
    const n = findRecord(records, w.config, w.T, 'node')
    if (n && n.stepMs.p50 > 0) ratios.push({ ratio: w.stepMs.p50 / n.stepMs.p50, at: `${w.config} T=${w.T}` })
  }
  if (ratios.length === 0) return target('workerd-vs-node', 'in-process step p50, workerd / Node (geometric mean over points)', null, '≤', 1.3)
  const geomean = Math.exp(ratios.reduce((s, r) => s + Math.log(r.ratio), 0) / ratios.length)
  const worst = ratios.reduce((a, b) => (b.ratio > a.ratio ? b : a))
  const over = ratios.filter((r) => r.ratio > 1.3).length
  return target(
    'workerd-vs-node',
    'in-process step p50, workerd / Node (geometric mean over points)',
    geomean,
    '≤',
    1.3,
    `${ratios.length} points; worst ${round3(worst.ratio)} (${worst.at}); ${over} above 1.3`,
  )
}

/**
 * The codec targets: decode MB/s / copy MB/s ≥ 0.5 and encode MB/s / copy MB/s ≥ 0.25, on the
 * float32 blob (`codec-core.ts` rows).
 */
export function codecTargets(rows: readonly { op: string; storage: string; mbPerS: number }[], where: string): TargetResult[] {
  const get = (op: string) => rows.find((r) => r.op === op && r.storage === 'float32')?.mbPerS
  const copy = get('copy')
  const ratio = (op: string) => {
    const v = get(op)
    return v !== undefined && copy ? v / copy : null
  }
  return [
    target(`codec-decode-${where}`, `decode (a Durable Object's load) MB/s / new Uint8Array(src) MB/s, float32 blob (${where})`, ratio('decode'), '≥', 0.5),
    target(`codec-encode-${where}`, `encode MB/s / new Uint8Array(src) MB/s, float32 blob (${where})`, ratio('encode'), '≥', 0.25),
  ]
}
