/**
 * @module The JSON manifest that sits beside each ONNX model: architecture, I/O contract, ports.
 * See ARCHITECTURE.md ("Model contract").
 */

/** An ONNX graph input or output: dims are numbers (fixed) or names (symbolic: batch, seq, past, total, memory). */
export interface PortSpec {
  name: string
  dtype: 'float32' | 'int64' | 'uint8'
  dims: (number | string)[]
}

/** One camera the encoder reads: an RGB8 frame `[batch, height, width, 3]` uint8 → `visualTokens`. */
export interface CameraSpec {
  name: string
  input: string
  height: number
  width: number
  visualTokens: number
  grid: number[]
}

/** The prefix encoder of an agent model (image(s) + proprio + instruction bytes → inputs_embeds). */
export interface EncoderSpec {
  file: string
  sha256: string
  inputs: PortSpec[]
  outputs: PortSpec[]
  cameras: CameraSpec[]
  proprioSize: number
  instructionMaxBytes: number
}

/** One segment of the action head (the decoder's `logits` at the last prefix position). */
export interface ActionSegment {
  name: string
  kind: 'categorical' | 'continuous' | 'binary-logit'
  offset: number
  size: number
  meaning: string
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
  /** Agent models: which adapter serves them. Absent: the plain text decoder. */
  domain?: 'gui' | 'robot'
  /** Agent models: the prefix encoder. */
  encoder?: EncoderSpec
  /** Agent models: the action head layout. */
  actionHead?: { size: number; segments: ActionSegment[] }
}
