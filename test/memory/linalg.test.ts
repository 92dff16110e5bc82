/**
 * Orthonormal basis (modified Gram–Schmidt, re-orthogonalised) and projection residuals against
 * least squares by the normal equations, in float64.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { basisOfRows, orthonormalBasis, residualNorm, residualNorms } from '../../memory/linalg.ts'
import { dot, gramDeterminant, leastSquaresResidual } from './least-squares.ts'

describe('orthonormalBasis / residualNorm', () => {
  it('is orthonormal and matches least squares on the first r vectors', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 8 }),
        // multiples of 1/64 in [−4, 4]: exact in float32, as keys are, and no denormals
        fc.array(
          fc.integer({ min: -256, max: 256 }).map((x) => x / 64),
          {
            minLength: 80,
            maxLength: 80,
          },
        ),
        (count, dim, maxRank, pool) => {
          const vectors = pool.slice(0, count * dim)
          while (vectors.length < count * dim) vectors.push(1)
          const basis = orthonormalBasis(vectors, count, dim, maxRank)
          const r = Math.min(count, dim, maxRank)
          const cols = Array.from({ length: r }, (_, i) => vectors.slice(i * dim, (i + 1) * dim))
          // only well-conditioned draws (the normal equations square the condition number):
          // Hadamard ratio det(AᵀA) / Π‖aᵢ‖² ∈ [0, 1], 1 for orthogonal columns
          const hadamard = gramDeterminant(cols) / cols.reduce((p, a) => p * dot(a, a), 1)
          fc.pre(basis.rank === r && hadamard > 1e-2)
          for (let a = 0; a < r; a++) {
            for (let b = 0; b < r; b++) {
              const q = (k: number) => [...basis.vectors.subarray(k * dim, (k + 1) * dim)]
              expect(dot(q(a), q(b))).toBeCloseTo(a === b ? 1 : 0, 12)
            }
          }
          const v = pool.slice(70, 70 + dim).map((x) => x + 0.5)
          while (v.length < dim) v.push(0.25)
          expect(residualNorm(basis, v)).toBeCloseTo(leastSquaresResidual(cols, v), 9)
        },
      ),
      { numRuns: 300 },
    )
  })

  it('skips dependent vectors and continues with later ones (rank deficiency)', () => {
    // a, 2a, 0, b in R^3 with maxRank 2 → basis spans {a, b}
    const [a, b] = [
      [1, 2, 2],
      [0, 1, -1],
    ]
    const basis = orthonormalBasis([...a, ...a.map((x) => 2 * x), 0, 0, 0, ...b], 4, 3, 2)
    expect(basis.rank).toBe(2)
    const v = [3, -1, 4]
    expect(residualNorm(basis, v)).toBeCloseTo(leastSquaresResidual([a, b], v), 12)
    expect(residualNorm(basis, [1, 3, 1])).toBeCloseTo(0, 12) // a + b
    // rank stops where the vectors run out; an empty basis leaves ‖v‖
    expect(orthonormalBasis([...a, ...a], 2, 3, 3).rank).toBe(1)
    expect(residualNorm(orthonormalBasis([], 0, 3, 32), [3, 4, 0])).toBe(5)
    expect(() => orthonormalBasis([1, 2], 1, 3, 1)).toThrow(RangeError)
  })
})

describe('basisOfRows / residualNorms (rows read in place)', () => {
  it('property: the same basis and residuals, bit for bit, as orthonormalBasis / residualNorm', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 16 }),
        fc.float32Array({
          minLength: 600,
          maxLength: 600,
          noNaN: true,
          noDefaultInfinity: true,
          min: -8,
          max: 8,
        }),
        fc.nat(),
        (dim, rows, maxRank, pool, seed) => {
          // A [rows, dim] matrix inside `pool` at an offset; current rows 0, 2, 4, …, previous the others
          const offset = seed % (600 - rows * dim + 1)
          const starts = Int32Array.from({ length: rows }, (_, r) => offset + r * dim)
          const current = starts.filter((_, r) => r % 2 === 0)
          const previous = starts.filter((_, r) => r % 2 === 1)
          const copy = Float64Array.from(
            [...current].flatMap((s) => [...pool.subarray(s, s + dim)]),
          )
          const expected = orthonormalBasis(copy, current.length, dim, maxRank)
          const basis = basisOfRows(pool, current, dim, maxRank)
          expect(basis.rank).toBe(expected.rank)
          expect([...basis.vectors]).toEqual([...expected.vectors])
          const rho = residualNorms(basis, pool, previous)
          previous.forEach((s, j) =>
            expect(rho[j]).toBe(residualNorm(expected, pool.subarray(s, s + dim))),
          )
        },
      ),
      { numRuns: 500 },
    )
  })
})
