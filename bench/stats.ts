/**
 * @module Latency statistics for the benches: percentiles by linear interpolation between order
 * statistics (the "type 7" rule of R and NumPy's default), and the `{p50, p95}` summary every
 * latency record carries.
 */

/**
 * The p-th percentile of `samples` (linear interpolation: rank (n − 1)·p/100 between the sorted
 * samples). One sample is its own percentile.
 * @param samples values in any order (not modified), e.g. step latencies in ms
 * @param p percent, 0 … 100
 * @returns the interpolated value, in the samples' unit
 * @throws RangeError for no samples, a non-finite sample, or p outside [0, 100]
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('percentile of no samples')
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile p must be in [0, 100], got ${p}`)
  if (samples.some((x) => !Number.isFinite(x))) throw new RangeError('percentile of a non-finite sample')
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = ((sorted.length - 1) * p) / 100
  const lo = Math.floor(rank)
  const hi = Math.ceil(rank)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo)
}

/** p50 and p95 of a latency sample (ms), rounded to 0.01 ms, with the sample count. */
export interface LatencySummary {
  p50: number
  p95: number
  n: number
}

const round2 = (x: number) => Math.round(x * 100) / 100

/**
 * Summarizes step latencies.
 * @param samplesMs latencies in ms (at least one)
 * @returns `{p50, p95, n}` in ms
 * @throws RangeError as `percentile`
 */
export function latencySummary(samplesMs: readonly number[]): LatencySummary {
  return { p50: round2(percentile(samplesMs, 50)), p95: round2(percentile(samplesMs, 95)), n: samplesMs.length }
}

/** Median of `samples` (the p50). @throws RangeError as `percentile` */
export const median = (samples: readonly number[]): number => percentile(samples, 50)
