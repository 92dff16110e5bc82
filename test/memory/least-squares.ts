/**
 * @module Float64 least squares by the normal equations, a reference for projection residuals
 * computed another way (Gram–Schmidt in memory/linalg.ts).
 */

/** a · b */
export const dot = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i], 0)

/** min_c ‖v − A c‖₂ with A's columns `cols`, via (AᵀA) c = Aᵀ v and Gaussian elimination with
 * partial pivoting. `cols` must be independent. */
export function leastSquaresResidual(cols: number[][], v: number[]): number {
  const r = cols.length
  const m = cols.map((a) => [...cols.map((b) => dot(a, b)), dot(a, v)]) // [r, r + 1]
  for (let i = 0; i < r; i++) {
    let p = i
    for (let k = i + 1; k < r; k++) if (Math.abs(m[k][i]) > Math.abs(m[p][i])) p = k
    ;[m[i], m[p]] = [m[p], m[i]]
    for (let k = i + 1; k < r; k++) {
      const f = m[k][i] / m[i][i]
      for (let j = i; j <= r; j++) m[k][j] -= f * m[i][j]
    }
  }
  const c = new Array<number>(r).fill(0)
  for (let i = r - 1; i >= 0; i--) {
    let s = m[i][r]
    for (let j = i + 1; j < r; j++) s -= m[i][j] * c[j]
    c[i] = s / m[i][i]
  }
  const fit = v.map((x, d) => x - cols.reduce((s, a, k) => s + c[k] * a[d], 0))
  return Math.sqrt(dot(fit, fit))
}

/** Determinant of the Gram matrix AᵀA (0 for dependent columns). */
export function gramDeterminant(cols: number[][]): number {
  const m = cols.map((a) => cols.map((b) => dot(a, b)))
  let det = 1
  for (let i = 0; i < m.length; i++) {
    for (let k = i + 1; k < m.length; k++) {
      const f = m[k][i] / m[i][i]
      for (let j = i; j < m.length; j++) m[k][j] -= f * m[i][j]
    }
    det *= m[i][i]
  }
  return det
}
