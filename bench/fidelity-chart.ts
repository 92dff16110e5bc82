/**
 * @module The chart of a trained-model fidelity run (`robot-fidelity`, `gui-fidelity`): agreement
 * with the full cache on the memory-dependent steps (with its 95 % interval) against the serialized
 * memory per step, one point per policy × budget × storage width; the memoryless run is the dashed
 * floor (it stores nothing, so it has no place on the log axis). Rendered with Vega-Lite (`chart.ts`).
 */
import type { TopLevelSpec } from 'vega-lite'
import { writeSvg } from './chart.ts'

/** The fields of a fidelity row the chart reads (bench/robot-fidelity.ts, bench/gui-fidelity.ts). */
export interface FidelityChartRow {
  label: string
  policy: string
  bits: number
  budgetTokens?: number
  /** share of memory-dependent steps whose action agrees with the full cache's, and its 95 % CI */
  agreementMemory: number
  agreementMemoryCI: [number, number]
  memorySteps: number
  /** serialized memory per step (bytes) */
  bytesPerStep: number
}

/** Storage width of a row as the legend names it. */
const storageOf = (r: FidelityChartRow) => (r.bits === 32 ? 'float32' : `KIVI ${r.bits}-bit`)

/**
 * The Vega-Lite spec of the chart (exported for tests).
 * @param title the suite, e.g. 'Robot suite (robot-carried / robot-tempo)'
 * @param rows the run's rows; rows with a `label` seen before (reruns of one configuration) keep the first
 * @throws RangeError when no row has stored bytes (nothing to place on the axis)
 */
export function fidelityChartSpec(title: string, rows: FidelityChartRow[]): TopLevelSpec {
  const seen = new Set<string>()
  const unique = rows.filter((r) => !seen.has(r.label) && seen.add(r.label))
  const points = unique
    .filter((r) => r.bytesPerStep > 0)
    .map((r) => ({
      label: r.label,
      policy: r.policy,
      storage: storageOf(r),
      kib: r.bytesPerStep / 1024,
      pct: 100 * r.agreementMemory,
      lo: 100 * r.agreementMemoryCI[0],
      hi: 100 * r.agreementMemoryCI[1],
    }))
  if (!points.length) throw new RangeError('no fidelity row stores any bytes')
  const floor = unique.find((r) => r.bytesPerStep === 0)
  const steps = Math.max(...unique.map((r) => r.memorySteps))
  const x = { field: 'kib', type: 'quantitative', title: 'serialized memory per step (KiB, log)', scale: { type: 'log' } } as const
  return {
    title: {
      text: title,
      subtitle: `agreement with the full cache on ${steps} memory-dependent steps vs stored bytes; bars: 95 % interval${floor ? `; dashed: memoryless (${(100 * floor.agreementMemory).toFixed(1)} %)` : ''}`,
    },
    width: 560,
    height: 340,
    layer: [
      { data: { values: points }, mark: { type: 'rule', opacity: 0.5 }, encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color: { field: 'policy', type: 'nominal' } } },
      {
        data: { values: points },
        mark: { type: 'point', filled: true, size: 90 },
        encoding: {
          x,
          y: { field: 'pct', type: 'quantitative', title: 'agreement on memory-dependent steps (%)', scale: { domain: [0, 100] } },
          color: { field: 'policy', type: 'nominal' },
          shape: { field: 'storage', type: 'nominal', title: 'storage' },
          tooltip: [{ field: 'label' }, { field: 'pct', format: '.1f' }, { field: 'kib', format: '.0f' }],
        },
      },
      ...(floor ? [{ data: { values: [{ pct: 100 * floor.agreementMemory }] }, mark: { type: 'rule' as const, strokeDash: [6, 4], color: 'gray' }, encoding: { y: { field: 'pct', type: 'quantitative' as const } } }] : []),
    ],
  } as TopLevelSpec
}

/** Writes the chart of `rows` to `file` (SVG). @throws as `fidelityChartSpec` */
export async function writeFidelityChart(title: string, rows: FidelityChartRow[], file: string): Promise<void> {
  await writeSvg(fidelityChartSpec(title, rows), file)
}
