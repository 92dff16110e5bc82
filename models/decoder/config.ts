/**
 * @module Architecture of stepkv's generated decoder-only test models (Llama-style: RMSNorm,
 * RoPE rotate-half, GQA attention, SwiGLU MLP, pre-norm residual blocks).
 */

/** Hyperparameters of a generated decoder. Sizes are counts; `ropeBase` is the RoPE θ. */
export interface DecoderConfig {
  /** Vocabulary size V (256: one token per byte). */
  vocabSize: number
  /** Residual width D. */
  hiddenSize: number
  /** Number of transformer blocks L. */
  layers: number
  /** Query heads H. */
  heads: number
  /** Key/value heads Hkv (GQA: H is a multiple of Hkv; each KV head serves H / Hkv query heads). */
  kvHeads: number
  /** Per-head width Dh (even: RoPE rotates its two halves). */
  headDim: number
  /** SwiGLU inner width F. */
  intermediateSize: number
  /** RoPE base: inv_freq_i = ropeBase^(−2i/Dh), i = 0 … Dh/2 − 1. */
  ropeBase: number
  /** RMSNorm epsilon, added to mean(x²). */
  rmsNormEps: number
  /** Largest absolute position id the model is specified for. */
  maxPosition: number
  /** TempoFit memory layers: strictly increasing indices in [0, L). At each, the graph gains the
   * `tempo.{l}.key|value` bank inputs and `tempo_prefix.{l}.key|value` outputs and runs K-to-K
   * retrieval with norm-preserving residual loading (models/decoder/tempo.ts). Absent or [] = no
   * TempoFit ports (the graph is then byte-identical to one built before this field existed).
   * @see TempoFit, arXiv:2603.07647 */
  tempoLayers?: readonly number[]
}

/** The default tiny model 'tiny-gqa': V 256, D 64, L 4, H 4, Hkv 2, Dh 16, F 128. */
export const TINY_GQA: DecoderConfig = {
  vocabSize: 256,
  hiddenSize: 64,
  layers: 4,
  heads: 4,
  kvHeads: 2,
  headDim: 16,
  intermediateSize: 128,
  ropeBase: 10000,
  rmsNormEps: 1e-5,
  maxPosition: 1_000_000,
}

/** The seed the committed 'tiny-gqa' weights were generated from. */
export const TINY_GQA_SEED = 20260801

/** TempoFit's default layer set, the middle third of L layers: ⌊L/3⌋ … ⌈2L/3⌉ − 1 (L = 4 → [1, 2],
 * L = 18 → [6 … 11]). The paper found middle layers best (first half 89.4 %, second half 59.8 %,
 * all layers 74.2 %, chosen middle layers 96.6 %) but did not publish the indices.
 * @throws RangeError if layers is not a positive integer
 * @see TempoFit, arXiv:2603.07647 */
export function middleThirdLayers(layers: number): number[] {
  if (!Number.isInteger(layers) || layers <= 0) {
    throw new RangeError('layers must be a positive integer')
  }
  const first = Math.floor(layers / 3)
  const end = Math.ceil((2 * layers) / 3)
  return Array.from({ length: end - first }, (_, i) => first + i)
}

/** 'tiny-gqa-tempo': tiny-gqa (same config, seed and weights; the retrieval adds no weights) with
 * TempoFit ports at the middle third of its 4 layers, [1, 2].
 * @see TempoFit, arXiv:2603.07647 */
export const TINY_GQA_TEMPO: DecoderConfig = {
  ...TINY_GQA,
  tempoLayers: middleThirdLayers(TINY_GQA.layers),
}

/** Checks the config's invariants.
 * @throws RangeError if heads is not a multiple of kvHeads, headDim is odd, a size is not a
 * positive integer, or tempoLayers is not strictly increasing integers in [0, layers). */
export function checkDecoderConfig(c: DecoderConfig): void {
  const sizes: Record<string, unknown> = { ...c }
  for (const k of [
    'vocabSize',
    'hiddenSize',
    'layers',
    'heads',
    'kvHeads',
    'headDim',
    'intermediateSize',
  ]) {
    const size = sizes[k]
    if (typeof size !== 'number' || !Number.isInteger(size) || size <= 0)
      throw new RangeError(`${k} must be a positive integer`)
  }
  if (c.heads % c.kvHeads !== 0) throw new RangeError('heads must be a multiple of kvHeads')
  if (c.headDim % 2 !== 0) throw new RangeError('headDim must be even (RoPE rotate-half)')
  const tempo = c.tempoLayers ?? []
  tempo.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= c.layers || (i > 0 && l <= tempo[i - 1]))
      throw new RangeError(`tempoLayers must be strictly increasing integers in [0, ${c.layers})`)
  })
}
