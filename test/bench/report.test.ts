/**
 * README tables from bench records: cells `p50 / p95`, 'failed' for a recorded failure, '—' when
 * unmeasured; KiB rounded; targets with their verdict.
 */
import { describe, expect, it } from 'vitest'
import { bytesTable, latencyTable, targetsTable } from '../../bench/report.ts'

const records = [
  { config: 'full', T: 1, runtime: 'node', stepMs: { p50: 15.06, p95: 17.94 }, bytes: 224_260 },
  { config: 'full', T: 2, runtime: 'node', stepMs: { p50: 150.4, p95: 1234.5 }, bytes: 446_884 },
  { config: 'reencode', T: 1, runtime: 'node', stepMs: { p50: 21.5, p95: 22 }, bytes: 2_048 },
]

describe('report tables', () => {
  it('latency: p50 / p95 per T, failures and gaps marked', () => {
    expect(latencyTable(records, 'node', [1, 2], [{ config: 'reencode', runtime: 'node', T: 2 }])).toBe(
      '| configuration | T = 1 | T = 2 |\n|---|---|---|\n| full | 15.1 / 17.9 | 150 / 1,235 |\n| reencode | 21.5 / 22 | failed |',
    )
    expect(latencyTable(records, 'workerd', [1])).toBe('| configuration | T = 1 |\n|---|---|')
  })

  it('bytes in KiB', () => {
    expect(bytesTable(records, [1, 2])).toBe('| configuration | T = 1 | T = 2 |\n|---|---:|---:|\n| full | 219 | 436 |\n| reencode | 2 | — |')
  })

  it('targets with their verdict', () => {
    const t = { id: 'x', what: 'a / b', ratio: 1.3, limit: 1.2, comparison: '≤' as const, met: false }
    expect(targetsTable([t])).toBe('| target | measured | required | met |\n|---|---:|---|---|\n| a / b | 1.3 | ≤ 1.2 | **not met** |')
  })
})
