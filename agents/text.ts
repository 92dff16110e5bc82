/**
 * @module The plain-decoder adapter: an observation's text becomes byte tokens (UTF-8, vocab 256)
 * and the action is the greedy next token after the prefix. GUI and robot adapters follow the same
 * shape with visual and proprio tokens.
 */
import { BadRequestError } from '../memory/errors.ts'
import { TokenKind } from '../memory/types.ts'
import type { Adapter } from './adapter.ts'

/** A step's prefix as model input: token ids `[S]` and a `TokenKind` code per token `[S]`. */
export interface Prefix {
  inputIds: number[]
  kinds: Uint8Array
}

/** The decoded action of the plain decoder: the argmax token of the last prefix position. */
export interface TokenAction {
  type: 'token'
  token: number
  /** The token as text (one byte; `\uFFFD` when it is not a complete UTF-8 character). */
  text: string
  /** Its logit. */
  logit: number
}

/**
 * Turns `observation.text` (UTF-8) or `observation.tokens` (byte ids 0..vocabSize−1) into a prefix.
 * @throws BadRequestError when both or neither are given, a token is out of range, or the prefix
 *   is longer than `maxPrefixTokens`
 */
export function encodeText(
  observation: { text?: string; tokens?: number[] },
  vocabSize: number,
  maxPrefixTokens: number,
): Prefix {
  const { text, tokens } = observation
  if ((text === undefined) === (tokens === undefined))
    throw new BadRequestError('observation needs exactly one of text or tokens', {}, 'invalid_observation')
  const ids = tokens ?? [...new TextEncoder().encode(text)]
  if (ids.length === 0)
    throw new BadRequestError('observation has no tokens: a step needs at least one', {}, 'invalid_observation')
  if (ids.length > maxPrefixTokens)
    throw new BadRequestError(
      `observation has ${ids.length} tokens, the limit per step is ${maxPrefixTokens}`,
      { tokens: ids.length, limit: maxPrefixTokens },
      'too_many_tokens',
    )
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
      throw new BadRequestError(`token ${i} is ${id}, outside 0..${vocabSize - 1}`, { index: i }, 'invalid_observation')
  })
  return { inputIds: ids, kinds: new Uint8Array(ids.length).fill(TokenKind.text) }
}

/**
 * Greedy decode of one token from the last prefix position.
 * @param logits Float32Array `[S, vocab]` (batch 1)
 */
export function greedyToken(logits: Float32Array, vocabSize: number): TokenAction {
  const row = logits.subarray(logits.length - vocabSize)
  let best = 0
  for (let v = 1; v < vocabSize; v++) if (row[v] > row[best]) best = v
  const text = best < 0x80 ? String.fromCharCode(best) : '\uFFFD'
  return { type: 'token', token: best, text, logit: row[best] }
}

/** The plain decoder's adapter: text or byte tokens in, the greedy next token out. */
export function textAdapter(vocabSize: number, maxPrefixTokens: number): Adapter<TokenAction> {
  return {
    kind: 'text',
    async encode(observation) {
      const extra = Object.keys(observation).filter((k) => observation[k] !== undefined && k !== 'text' && k !== 'tokens')
      if (extra.length)
        throw new BadRequestError(`the text decoder does not read observation field(s) ${extra.join(', ')} (it reads text or tokens)`, { fields: extra }, 'invalid_observation')
      const prefix = encodeText(observation as { text?: string; tokens?: number[] }, vocabSize, maxPrefixTokens)
      return { tokens: prefix.inputIds.length, inputIds: prefix.inputIds, kinds: prefix.kinds }
    },
    decode: (logits) => greedyToken(logits, vocabSize),
  }
}
