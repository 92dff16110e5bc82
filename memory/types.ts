/**
 * @module Core memory types: a session's carried KV cache, per layer, with per-token metadata.
 */

/** What a kept token was in its step's prefix. Stored as a Uint8 code. */
export const TokenKind = { text: 0, visual: 1, proprio: 2 } as const
export type TokenKindName = keyof typeof TokenKind

/** Flag bit OR-ed into a kind code: the token is pinned (e.g. the task instruction) and no policy
 * ever evicts it. `kind & KIND_MASK` is the `TokenKind`. */
export const PINNED = 0x80
/** Mask of the `TokenKind` bits of a stored kind code. */
export const KIND_MASK = 0x7f

/**
 * One layer's carried KV cache. Every head keeps the same number of tokens (`SessionMemory.tokens`)
 * but may keep different ones (per-head selection, as SnapKV/GUI-KV do), so metadata is per head.
 * - `keys`, `values`: Float32Array `[kvHeads, tokens, headDim]`; keys are post-RoPE (as the model
 *   returns them in `present.{l}.key`), so a kept key never needs re-rotation.
 * - `positions`: Int32Array `[kvHeads, tokens]`, absolute position id each token was prefilled at.
 * - `frames`: Int32Array `[kvHeads, tokens]`, the step `seq` whose prefix produced the token.
 * - `kinds`: Uint8Array `[kvHeads, tokens]`, a `TokenKind` code.
 */
export interface LayerMemory {
  keys: Float32Array
  values: Float32Array
  positions: Int32Array
  frames: Int32Array
  kinds: Uint8Array
  /** Optional policy score carried across steps, Float32Array `[kvHeads, tokens]` (H2O/A2SF
   * accumulated attention). Gathered and persisted with the tokens; absent for other policies. */
  scores?: Float32Array
}

/**
 * A session's carried memory. Pure data: no I/O, no clock.
 * `tokens` is the same for every layer because one `attention_mask [B, P+S]` serves all layers.
 * `nextPosition` is kept apart from `tokens`: pruning never renumbers positions, and the next prefix
 * starts at `nextPosition` (the true absolute position), not at the number of kept rows.
 */
export interface SessionMemory {
  model: { id: string; sha256: string }
  layers: LayerMemory[]
  kvHeads: number
  headDim: number
  /** Rows kept per head in every layer (P, the past length fed to the model). */
  tokens: number
  /** Absolute position id of the next prefix token. */
  nextPosition: number
  /** The last step seq folded into this memory (0 before the first step). */
  seq: number
  /** Model layer index of each entry of `layers`. Absent = every model layer in order (a carried
   * KV cache). A TempoFit bank holds only the memory layers, e.g. `[1, 2]`. */
  layerIds?: number[]
}

/**
 * What a memory policy learns about the step that just ran.
 * - `seq`: the step's sequence number (frame id of its prefix tokens).
 * - `prefixTokens`: S, the number of prefix tokens this step appended (the last S rows).
 * - `attnWindow` / `attnTotal` (optional model ports): per layer Float32Array `[kvHeads, tokens]`.
 * - `hiddenNorm` (optional): per layer Float32Array `[prefixTokens]`.
 */
export interface StepInfo {
  seq: number
  prefixTokens: number
  /** This step's prefix kind codes `[prefixTokens]` (with the PINNED flag where pinned). */
  kinds?: Uint8Array
  attnWindow?: Float32Array[]
  attnTotal?: Float32Array[]
  hiddenNorm?: Float32Array[]
  /** TempoFit: this step's pre-RoPE prefix K/V per memory layer (`tempo_prefix.{l}.key|value`),
   * each Float32Array `[kvHeads, prefixTokens, headDim]`. */
  tempoPrefix?: { key: Float32Array; value: Float32Array }[]
}

/** A memory policy: returns the memory to carry into the next step (may be the same object). */
export interface Policy {
  readonly name: string
  readonly params: Readonly<Record<string, number | string | boolean>>
  /** What the memory is: a carried KV cache fed as `past_key_values` (default), or a TempoFit
   * bank fed to the model's `tempo.{l}` ports. */
  readonly memory?: 'carried' | 'tempo'
  /** Observation window w the policy needs from the model (`obs_window` → `attn_window.{l}`). */
  readonly observationWindow?: number
  /** Optional model ports the policy reads; a model without one refuses the policy at creation. */
  readonly requires?: readonly ('attnWindow' | 'attnTotal' | 'hiddenNorm' | 'tempo')[]
  /** True when `update` reads the memory's key values (GUI-KV's temporal subspace); no policy
   * reads the values. A device-resident host downloads this step's keys `[Hkv, P + S, Dh]` per
   * layer for such a policy (`gpu/resident.ts`); the values stay on the device. */
  readonly readsKeys?: boolean
  /** Rows per head the policy keeps after `update` (tokens), when it has a budget: pins may keep
   * more. The fixed step layout (`EngineLimits.layout`) pads the past to it. Absent: unbounded. */
  readonly budgetTokens?: number
  update(mem: SessionMemory, step: StepInfo): SessionMemory
}
