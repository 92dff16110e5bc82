/**
 * @module The JSON manifest that sits beside each ONNX model: architecture, I/O contract, ports.
 * See ARCHITECTURE.md ("Model contract").
 */

/** An ONNX graph input or output: dims are numbers (fixed) or names (symbolic: batch, seq, past, total, memory). */
export interface PortSpec {
  name: string
  dtype: 'float32' | 'int64'
  dims: (number | string)[]
}

/** Manifest of one model. `sha256` is the hex digest of the .onnx bytes. */
export interface ModelManifest {
  id: string
  file: string
  sha256: string
  architecture: 'decoder'
  layers: number
  heads: number
  kvHeads: number
  headDim: number
  hiddenSize: number
  intermediateSize: number
  vocabSize: number
  ropeBase: number
  rmsNormEps: number
  /** Largest absolute position id the model accepts (positions past it are refused with a clear error). */
  maxPosition: number
  tokenizer: { kind: 'bytes' }
  inputs: PortSpec[]
  outputs: PortSpec[]
  /** Which optional ports of the model contract exist. */
  ports: {
    inputIds: boolean
    inputsEmbeds: boolean
    obsWindow: boolean
    attnWindow: boolean
    attnTotal: boolean
    hiddenNorm: boolean
    tempo: boolean
  }
  tempoLayers: number[]
  /** How the weights were produced (generator and seed, or training run). */
  provenance: Record<string, string | number>
}
