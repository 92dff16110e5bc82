/**
 * @module The re-encoding baseline (frame stacking): what users do without a carried memory. Every
 * step re-encodes the last T frames from scratch and prefills all of them at positions 0…, with
 * nothing carried between steps. Built as an adapter over the model's own one-frame adapter, so
 * the step runs through the same engine (`runStep`) as the carried policies.
 */
import type { Adapter, EncodedPrefix } from '../agents/adapter.ts'

/**
 * An adapter whose observation is `{frames: [obs₁ … obs_T]}` (each what `inner` takes): the prefix
 * is every frame's prefix in order (the encoder runs once per frame), so a fresh session prefills
 * T frames in one step. Its action is read at the last token, as for one frame.
 * @param inner the model's one-frame adapter (GUI: `{image, instruction}`)
 * @returns an adapter of the same kind; `encode` throws BadRequestError as `inner` does, and
 *   RangeError when `frames` is missing or empty
 */
export function stackedAdapter<A>(inner: Adapter<A>): Adapter<A> {
  return {
    kind: inner.kind,
    decode: (logits) => inner.decode(logits),
    async encode(observation): Promise<EncodedPrefix> {
      const frames = observation.frames
      if (!Array.isArray(frames) || frames.length === 0) throw new RangeError('a stacked observation needs frames: [...] (≥ 1)')
      const parts: EncodedPrefix[] = []
      for (const frame of frames) parts.push(await inner.encode(frame as Record<string, unknown>))
      return concatPrefixes(parts)
    },
  }
}

/**
 * Concatenates encoded prefixes in order (token ids or embeddings, and kinds).
 * @param parts prefixes of one model (all `inputIds` or all `inputsEmbeds` `[S_i, hidden]`)
 * @returns one prefix of Σ S_i tokens
 * @throws RangeError when the parts mix ids and embeddings
 */
export function concatPrefixes(parts: readonly EncodedPrefix[]): EncodedPrefix {
  const tokens = parts.reduce((n, p) => n + p.tokens, 0)
  const kinds = new Uint8Array(tokens)
  let at = 0
  for (const p of parts) kinds.set(p.kinds, at), (at += p.tokens)
  if (parts.every((p) => p.inputIds)) return { tokens, kinds, inputIds: parts.flatMap((p) => p.inputIds!) }
  if (!parts.every((p) => p.inputsEmbeds)) throw new RangeError('cannot stack prefixes that mix token ids and embeddings')
  const width = parts[0].inputsEmbeds!.length / parts[0].tokens
  const embeds = new Float32Array(tokens * width)
  at = 0
  for (const p of parts) embeds.set(p.inputsEmbeds!, at * width), (at += p.tokens)
  return { tokens, kinds, inputsEmbeds: embeds }
}
