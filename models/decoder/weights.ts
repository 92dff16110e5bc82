/**
 * @module Deterministic synthetic weights for a generated decoder: a seeded mulberry32 PRNG with
 * Box–Muller normals, scaled so activations and logits are O(1) and attention is far from uniform.
 */
import type { DecoderConfig } from './config.ts'

/** Weights of one transformer block. Matrices are row-major `[in, out]` (y = x · W). */
export interface LayerWeights {
  /** Input RMSNorm gain [D]. */
  attnNorm: Float32Array
  /** [D, H·Dh] */
  wq: Float32Array
  /** [D, Hkv·Dh] */
  wk: Float32Array
  /** [D, Hkv·Dh] */
  wv: Float32Array
  /** [H·Dh, D] */
  wo: Float32Array
  /** Post-attention RMSNorm gain [D]. */
  mlpNorm: Float32Array
  /** [D, F] */
  wGate: Float32Array
  /** [D, F] */
  wUp: Float32Array
  /** [F, D] */
  wDown: Float32Array
}

/** All weights: `embed` [V, D] (empty for a model fed `inputs_embeds`), `layers[l]`, `finalNorm`
 * [D], `lmHead` [D, V] and, for a head with a bias (the trained agent models' action head),
 * `lmHeadBias` [V]. */
export interface DecoderWeights {
  embed: Float32Array
  layers: LayerWeights[]
  finalNorm: Float32Array
  lmHead: Float32Array
  lmHeadBias?: Float32Array
}

/** mulberry32: a 32-bit seeded PRNG. @returns a function giving uniforms in [0, 1) */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Standard normal samples from a uniform source (Box–Muller, both outputs used). */
export function normalSource(uniform: () => number): () => number {
  let spare: number | undefined
  return () => {
    if (spare !== undefined) {
      const s = spare
      spare = undefined
      return s
    }
    const u = 1 - uniform() // (0, 1]: log is finite
    const v = uniform()
    const r = Math.sqrt(-2 * Math.log(u))
    spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }
}

/** Attention sharpness: wq and wk std = QK_GAIN / sqrt(D), so q·k/sqrt(Dh) has std ≈ QK_GAIN². */
const QK_GAIN = 1.6

/** Generates the weights of `config` from `seed`; the same (config, seed) gives the same bits.
 * Std: embed 1, wq/wk QK_GAIN/√D, wv/w_gate/w_up/lm_head 1/√fan_in, wo/w_down 0.5/√fan_in
 * (residual branches stay small), norm gains 1 + 0.1·N(0,1). */
export function generateWeights(config: DecoderConfig, seed: number): DecoderWeights {
  const normal = normalSource(mulberry32(seed))
  const { vocabSize: V, hiddenSize: D, heads: H, kvHeads: Hkv, headDim: Dh } = config
  const F = config.intermediateSize
  const gauss = (n: number, std: number) => Float32Array.from({ length: n }, () => std * normal())
  const gain = (n: number) => Float32Array.from({ length: n }, () => 1 + 0.1 * normal())
  const embed = gauss(V * D, 1)
  const layers: LayerWeights[] = []
  for (let l = 0; l < config.layers; l++) {
    layers.push({
      attnNorm: gain(D),
      wq: gauss(D * H * Dh, QK_GAIN / Math.sqrt(D)),
      wk: gauss(D * Hkv * Dh, QK_GAIN / Math.sqrt(D)),
      wv: gauss(D * Hkv * Dh, 1 / Math.sqrt(D)),
      wo: gauss(H * Dh * D, 0.5 / Math.sqrt(H * Dh)),
      mlpNorm: gain(D),
      wGate: gauss(D * F, 1 / Math.sqrt(D)),
      wUp: gauss(D * F, 1 / Math.sqrt(D)),
      wDown: gauss(F * D, 0.5 / Math.sqrt(F)),
    })
  }
  return { embed, layers, finalNorm: gain(D), lmHead: gauss(D * V, 1 / Math.sqrt(D)) }
}
