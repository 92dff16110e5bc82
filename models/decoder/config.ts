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

/** Checks the config's invariants.
 * @throws RangeError if heads is not a multiple of kvHeads, headDim is odd or a size is not a
 * positive integer. */
export function checkDecoderConfig(c: DecoderConfig): void {
  const sizes = { ...c } as Record<string, number>
  for (const k of [
    'vocabSize',
    'hiddenSize',
    'layers',
    'heads',
    'kvHeads',
    'headDim',
    'intermediateSize',
  ]) {
    if (!Number.isInteger(sizes[k]) || sizes[k] <= 0)
      throw new RangeError(`${k} must be a positive integer`)
  }
  if (c.heads % c.kvHeads !== 0) throw new RangeError('heads must be a multiple of kvHeads')
  if (c.headDim % 2 !== 0) throw new RangeError('headDim must be even (RoPE rotate-half)')
}
