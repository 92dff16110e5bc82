/**
 * @module Charts of the `history` bench (Vega-Lite → SVG): step latency p50 vs history length T
 * (one panel per runtime: Node, workerd, HTTP) and serialized memory vs T.
 */
import type { TopLevelSpec } from 'vega-lite'
import { writeSvg } from './chart.ts'
import type { HistoryRecord } from './targets.ts'

type Row = HistoryRecord & { storage: string }

const RUNTIME_TITLE: Record<string, string> = { node: 'in-process, Node', workerd: 'in-process, workerd', http: 'HTTP, wrangler dev' }

/** Latency vs T: log-log, colour = policy family, dash = storage, one column per runtime. */
export function latencySpec(records: readonly Row[]): TopLevelSpec {
  return {
    title: 'Step latency (p50) vs history length — trained GUI models, 2 cores',
    data: { values: records.map((r) => ({ ...r, p50: r.stepMs.p50, p95: r.stepMs.p95, where: RUNTIME_TITLE[r.runtime] })) },
    facet: { column: { field: 'where', type: 'nominal', title: null, sort: Object.values(RUNTIME_TITLE) } },
    spec: {
      width: 260,
      height: 260,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'T', type: 'quantitative', title: 'history length T (frames)', scale: { type: 'log', base: 2 }, axis: { values: [1, 2, 4, 8, 16, 32, 64] } },
        y: { field: 'p50', type: 'quantitative', title: 'step p50 (ms)', scale: { type: 'log' } },
        color: { field: 'family', type: 'nominal', title: 'policy' },
        strokeDash: { field: 'storage', type: 'nominal', title: 'storage' },
        detail: { field: 'config' },
        tooltip: [{ field: 'config' }, { field: 'T' }, { field: 'p50' }, { field: 'p95' }],
      },
    },
  } as TopLevelSpec
}

/** Serialized memory vs T (Node records; the bytes do not depend on the runtime). */
export function bytesSpec(records: readonly Row[]): TopLevelSpec {
  return {
    title: 'Memory carried between steps vs history length',
    // the fixed layout carries the same memory as the dynamic one: one line each
    data: { values: records.filter((r) => r.runtime === 'node' && !r.family.endsWith('-fixed')).map((r) => ({ ...r, kib: r.bytes / 1024 })) },
    width: 420,
    height: 300,
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'T', type: 'quantitative', title: 'history length T (frames)', scale: { type: 'log', base: 2 }, axis: { values: [1, 2, 4, 8, 16, 32, 64] } },
      y: { field: 'kib', type: 'quantitative', title: 'serialized memory (KiB; re-encoding: the T frames)', scale: { type: 'log' } },
      color: { field: 'family', type: 'nominal', title: 'policy' },
      strokeDash: { field: 'storage', type: 'nominal', title: 'storage' },
      detail: { field: 'config' },
      tooltip: [{ field: 'config' }, { field: 'T' }, { field: 'bytes' }],
    },
  } as TopLevelSpec
}

/** Writes both charts. @returns the two file paths */
export async function writeHistoryCharts(records: readonly Row[], latencyFile: string, bytesFile: string) {
  await writeSvg(latencySpec(records), latencyFile)
  await writeSvg(bytesSpec(records), bytesFile)
  return [latencyFile, bytesFile]
}
