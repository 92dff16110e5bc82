/**
 * @module Small dense linear algebra in float64 for memory policies: an orthonormal basis of the
 * span of some vectors (a thin QR's Q) and the residual of a vector after projecting onto it.
 */

/** Orthonormal vectors: Float64Array `[rank, dim]`, row k is the k-th basis vector. */
export interface Basis {
  dim: number
  rank: number
  vectors: Float64Array
}

/** Relative norm under which a vector counts as lying in the span of the earlier ones. */
export const DEPENDENT_TOLERANCE = 1e-5

/**
 * The first `maxRank` columns of Q of a thin QR of the matrix whose columns are `vectors`
 * (`[dim, count]`, i.e. the rows of `vectors`), by modified Gram–Schmidt with one full
 * re-orthogonalisation pass ("twice is enough"), in float64.
 * Rank deficiency: a vector whose norm after both passes is ≤ `DEPENDENT_TOLERANCE` × its own
 * norm (or zero) lies in the span already found and is skipped, and the next vector is tried, so
 * the basis spans the first `min(maxRank, rank)` independent directions of the vectors in order;
 * `rank` < `maxRank` only when the vectors run out. With independent leading vectors this is the
 * span of Householder QR's first `maxRank` columns (the projector Q Qᵀ is the same); a
 * Householder Q would instead complete a deficient span with arbitrary directions.
 * @param vectors `[count, dim]`, row-major (float32 or float64)
 * @param maxRank most basis vectors (≥ 0)
 * @returns `Basis` with `rank ≤ min(maxRank, count, dim)`
 * @throws RangeError if `vectors.length ≠ count · dim`
 * @see Giraud, Langou, Rozložník, "The loss of orthogonality in the Gram–Schmidt
 *   orthogonalization process" (2005), for re-orthogonalisation
 */
export function orthonormalBasis(
  vectors: ArrayLike<number>,
  count: number,
  dim: number,
  maxRank: number,
): Basis {
  if (vectors.length !== count * dim) {
    throw new RangeError(`vectors has ${vectors.length} values, expected [${count}, ${dim}]`)
  }
  return basisOfRows(
    vectors,
    Int32Array.from({ length: count }, (_, i) => i * dim),
    dim,
    maxRank,
  )
}

/**
 * `orthonormalBasis` of rows read in place: vector i is `data[starts[i] … starts[i] + dim)` (e.g.
 * rows of a `[kvHeads, tokens, headDim]` key tensor). Reads only the rows it needs (it stops once
 * `maxRank` vectors are found); the same arithmetic, so the same basis bit for bit.
 * @param starts `[count]` offsets into `data`, each with `dim` values after it
 * @returns `Basis` with `rank ≤ min(maxRank, count, dim)`
 */
export function basisOfRows(
  data: ArrayLike<number>,
  starts: ArrayLike<number>,
  dim: number,
  maxRank: number,
): Basis {
  const count = starts.length
  const limit = Math.min(maxRank, count, dim)
  const basis = new Float64Array(limit * dim)
  const u = new Float64Array(dim)
  let rank = 0
  for (let i = 0; i < count && rank < limit; i++) {
    for (let d = 0; d < dim; d++) u[d] = data[starts[i] + d]
    const norm = norm2(u)
    if (norm === 0 || !Number.isFinite(norm)) continue
    for (let pass = 0; pass < 2; pass++) removeSpan(basis, rank, dim, u)
    const left = norm2(u)
    if (left <= DEPENDENT_TOLERANCE * norm) continue
    for (let d = 0; d < dim; d++) basis[rank * dim + d] = u[d] / left
    rank++
  }
  return { dim, rank, vectors: basis.subarray(0, rank * dim) }
}

/**
 * `residualNorm` of many rows read in place: ‖v_j − Q Qᵀ v_j‖₂ for v_j = `data[starts[j] …
 * starts[j] + dim)`. Four rows go through the projections together (four independent dot-product
 * chains instead of one, which is what bounds the speed), each with exactly `residualNorm`'s
 * operations in its order, so every result is the same bit for bit.
 * @returns Float64Array `[starts.length]`
 */
export function residualNorms(
  basis: Basis,
  data: ArrayLike<number>,
  starts: ArrayLike<number>,
): Float64Array {
  const { dim, rank, vectors } = basis
  const n = starts.length
  const out = new Float64Array(n)
  const u = new Float64Array(4 * dim) // rows j … j + 3, one after another
  let j = 0
  for (; j + 4 <= n; j += 4) {
    for (let r = 0; r < 4; r++)
      for (let d = 0; d < dim; d++) u[r * dim + d] = data[starts[j + r] + d]
    for (let k = 0; k < rank; k++) {
      const q = k * dim
      let dot0 = 0
      let dot1 = 0
      let dot2 = 0
      let dot3 = 0
      for (let d = 0; d < dim; d++) {
        const b = vectors[q + d]
        dot0 += b * u[d]
        dot1 += b * u[dim + d]
        dot2 += b * u[2 * dim + d]
        dot3 += b * u[3 * dim + d]
      }
      for (let d = 0; d < dim; d++) {
        const b = vectors[q + d]
        u[d] -= dot0 * b
        u[dim + d] -= dot1 * b
        u[2 * dim + d] -= dot2 * b
        u[3 * dim + d] -= dot3 * b
      }
    }
    for (let r = 0; r < 4; r++) {
      let sum = 0 // norm2 of row r, in its order
      for (let d = r * dim; d < (r + 1) * dim; d++) sum += u[d] * u[d]
      out[j + r] = Math.sqrt(sum)
    }
  }
  const one = u.subarray(0, dim)
  for (; j < n; j++) {
    for (let d = 0; d < dim; d++) one[d] = data[starts[j] + d]
    removeSpan(vectors, rank, dim, one)
    out[j] = norm2(one)
  }
  return out
}

/**
 * ‖v − Q Qᵀ v‖₂: the distance from `v` to the span of `basis`, in float64.
 * @param v `[dim]` (a view into a key tensor is fine)
 * @throws RangeError if `v.length ≠ basis.dim`
 */
export function residualNorm(basis: Basis, v: ArrayLike<number>): number {
  if (v.length !== basis.dim)
    throw new RangeError(`v has ${v.length} values, basis dim ${basis.dim}`)
  const u = Float64Array.from(v)
  removeSpan(basis.vectors, basis.rank, basis.dim, u)
  return norm2(u)
}

/** u −= (q_k · u) q_k for k = 0 … rank − 1 (modified Gram–Schmidt order), in place. */
function removeSpan(basis: Float64Array, rank: number, dim: number, u: Float64Array): void {
  for (let k = 0; k < rank; k++) {
    let dot = 0
    for (let d = 0; d < dim; d++) dot += basis[k * dim + d] * u[d]
    for (let d = 0; d < dim; d++) u[d] -= dot * basis[k * dim + d]
  }
}

/** Euclidean norm of a float64 vector (keys are float32, so no overflow guard is needed). */
function norm2(u: Float64Array): number {
  let sum = 0
  for (let d = 0; d < u.length; d++) sum += u[d] * u[d]
  return Math.sqrt(sum)
}
