/**
 * @module `npm run bench -- report`: Markdown tables for the README from `bench/results/history.json`
 * and `bench/results/codec.json` (step latency, memory bytes, targets, codec throughput).
 */
import type { TargetResult } from './targets.ts'

interface Rec {
  config: string
  T: number
  runtime: string
  stepMs: { p50: number; p95: number }
  bytes: number
}

const fmt = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : String(Math.round(x * 10) / 10))
const kib = (b: number) => Math.round(b / 1024).toLocaleString('en-US')

/** Latency table: one row per configuration, one column per T, `p50 / p95` ms (— when absent). */
export function latencyTable(records: readonly Rec[], runtime: string, Ts: readonly number[], failed: readonly { config: string; runtime: string; T: number }[] = []): string {
  const configs = [...new Set(records.filter((r) => r.runtime === runtime).map((r) => r.config))]
  const head = `| configuration | ${Ts.map((T) => `T = ${T}`).join(' | ')} |\n|---|${Ts.map(() => '---|').join('')}`
  const rows = configs.map((c) => {
    const cells = Ts.map((T) => {
      const r = records.find((x) => x.config === c && x.T === T && x.runtime === runtime)
      if (r) return `${fmt(r.stepMs.p50)} / ${fmt(r.stepMs.p95)}`
      return failed.some((f) => f.config === c && f.T === T && f.runtime === runtime) ? 'failed' : '—'
    })
    return `| ${c} | ${cells.join(' | ')} |`
  })
  return [head, ...rows].join('\n')
}

/** Memory table (KiB carried to the next step), from the Node records. */
export function bytesTable(records: readonly Rec[], Ts: readonly number[]): string {
  const configs = [...new Set(records.filter((r) => r.runtime === 'node').map((r) => r.config))]
  const head = `| configuration | ${Ts.map((T) => `T = ${T}`).join(' | ')} |\n|---|${Ts.map(() => '---:|').join('')}`
  const rows = configs.map((c) => `| ${c} | ${Ts.map((T) => {
    const r = records.find((x) => x.config === c && x.T === T && x.runtime === 'node')
    return r ? kib(r.bytes) : '—'
  }).join(' | ')} |`)
  return [head, ...rows].join('\n')
}

/** Targets: id, what, measured ratio, target, met. */
export function targetsTable(targets: readonly TargetResult[]): string {
  const head = '| target | measured | required | met |\n|---|---:|---|---|'
  const rows = targets.map((t) => `| ${t.what}${t.detail ? ` (${t.detail})` : ''} | ${t.ratio ?? 'unmeasured'} | ${t.comparison} ${Math.round(t.limit * 1000) / 1000} | ${t.met ? 'met' : '**not met**'} |`)
  return [head, ...rows].join('\n')
}

/** Codec throughput: one row per operation × storage, MB/s in Node and workerd. */
export function codecTable(rows: readonly { op: string; storage: string; bytes: number; mbPerS: number; runtime: string }[]): string {
  const keys = [...new Set(rows.map((r) => `${r.op}|${r.storage}`))]
  const head = '| operation | storage | bytes | Node MB/s | workerd MB/s |\n|---|---|---:|---:|---:|'
  const lines = keys.map((k) => {
    const [op, storage] = k.split('|')
    const get = (rt: string) => rows.find((r) => r.op === op && r.storage === storage && r.runtime === rt)
    const any = get('node') ?? get('workerd')!
    return `| ${op} | ${storage} | ${any.bytes.toLocaleString('en-US')} | ${get('node')?.mbPerS.toLocaleString('en-US') ?? '—'} | ${get('workerd')?.mbPerS.toLocaleString('en-US') ?? '—'} |`
  })
  return [head, ...lines].join('\n')
}
