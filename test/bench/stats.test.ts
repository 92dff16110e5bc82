/**
 * Percentiles by linear interpolation (R type 7 / NumPy default), worked by hand.
 */
import { describe, expect, it } from 'vitest'
import { latencySummary, percentile } from '../../bench/stats.ts'

describe('percentile', () => {
  it('interpolates between order statistics', () => {
    // sorted [1, 2, 3, 4]: p50 rank 1.5 → 2.5; p95 rank 2.85 → 3 + 0.85 × (4 − 3) = 3.85
    expect(percentile([4, 1, 3, 2], 50)).toBe(2.5)
    expect(percentile([4, 1, 3, 2], 95)).toBeCloseTo(3.85, 12)
    expect(percentile([4, 1, 3, 2], 0)).toBe(1)
    expect(percentile([4, 1, 3, 2], 100)).toBe(4)
  })

  it('matches NumPy on an odd sample', () => {
    // numpy.percentile([10, 20, 30, 40, 1000], [50, 95]) = [30, 808]: rank 3.8 → 40 + 0.8 × 960
    expect(percentile([1000, 10, 40, 20, 30], 50)).toBe(30)
    expect(percentile([1000, 10, 40, 20, 30], 95)).toBeCloseTo(808, 9)
  })

  it('one sample is its own percentile; the input is not reordered', () => {
    const xs = [3, 1, 2]
    expect(percentile([7.5], 95)).toBe(7.5)
    percentile(xs, 50)
    expect(xs).toEqual([3, 1, 2])
  })

  it('refuses empty samples, non-finite values and p outside [0, 100]', () => {
    expect(() => percentile([], 50)).toThrow(RangeError)
    expect(() => percentile([1, NaN], 50)).toThrow(/non-finite/)
    expect(() => percentile([1], 101)).toThrow(/\[0, 100\]/)
  })
})

describe('latencySummary', () => {
  it('gives p50 and p95 rounded to 0.01 ms, with the count', () => {
    // sorted [10.001, 12.5, 13, 20]: p50 = 12.75; p95 rank 2.85 → 13 + 0.85 × 7 = 18.95
    expect(latencySummary([20, 13, 10.001, 12.5])).toEqual({ p50: 12.75, p95: 18.95, n: 4 })
  })
})
