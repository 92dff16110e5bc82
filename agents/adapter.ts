/**
 * @module The adapter interface between a client's observation and the decoder: an adapter turns
 * one step's observation into prefix tokens (ids or embeddings) with a kind per token, and the
 * action head's logits at the last prefix position into an action.
 */

/** One step's prefix, as the decoder takes it. Exactly one of `inputIds` / `inputsEmbeds` is set.
 * - `inputIds`: token ids `[S]` (models with `input_ids`)
 * - `inputsEmbeds`: Float32Array `[S, hiddenSize]` (models with `inputs_embeds`)
 * - `kinds`: Uint8Array `[S]`, a `TokenKind` code per token (visual, text, proprio), in prefix order */
export interface EncodedPrefix {
  tokens: number
  inputIds?: number[]
  inputsEmbeds?: Float32Array
  kinds: Uint8Array
}

/** Observation → prefix, last-position logits → action, for one model family. */
export interface Adapter<Action = unknown> {
  readonly kind: 'text' | 'gui' | 'robot'
  /** @throws BadRequestError for an observation this adapter cannot encode */
  encode(observation: Record<string, unknown>): Promise<EncodedPrefix>
  /** @param logits Float32Array `[actionSize]`: the action head at the last prefix position */
  decode(logits: Float32Array): Action
}
