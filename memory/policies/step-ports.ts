/**
 * @module Reading a step's optional model outputs (`attn_window.{l}`, `attn_total.{l}`,
 * `hidden_norm.{l}`) for a policy, checked once per step: present, one per layer, the right
 * length, finite.
 */
import { ModelMismatchError, NumericError } from '../errors.ts'
import type { SessionMemory, StepInfo } from '../types.ts'
import { firstNonFinite } from '../validate.ts'

/** A per-layer StepInfo port a policy may read. */
export type StepPort = 'attnWindow' | 'attnTotal' | 'hiddenNorm'

/**
 * This step's new-token count S, checked against the grown memory.
 * @returns S, an integer in `[0, mem.tokens]`
 * @throws RangeError if `step.prefixTokens` is not such an integer
 */
export function prefixTokensOf(mem: SessionMemory, step: StepInfo): number {
  const S = step.prefixTokens
  if (!Number.isInteger(S) || S < 0 || S > mem.tokens) {
    throw new RangeError(`step prefixTokens ${S} must be an integer in 0…${mem.tokens}`)
  }
  return S
}

/**
 * One port of the step, per layer.
 * @param mem the grown memory (P + S rows per head)
 * @returns per layer Float32Array: `[kvHeads, tokens]` for attnWindow/attnTotal,
 *   `[prefixTokens]` for hiddenNorm
 * @throws ModelMismatchError if the port is missing (the model lacks the output), has the wrong
 *   number of layers or a wrong length (layer named); NumericError on NaN/±Infinity
 */
export function stepPort(
  policy: string,
  mem: SessionMemory,
  step: StepInfo,
  port: StepPort,
): Float32Array[] {
  const data = step[port]
  const layers = mem.layers.length
  if (!data) {
    throw new ModelMismatchError(`${policy} policy needs the model output '${port}'`, {
      policy,
      port,
    })
  }
  if (data.length !== layers) {
    throw new ModelMismatchError(`${port} has ${data.length} layers, memory has ${layers}`, {
      port,
    })
  }
  const expected = port === 'hiddenNorm' ? step.prefixTokens : mem.kvHeads * mem.tokens
  data.forEach((values, l) => {
    if (!(values instanceof Float32Array) || values.length !== expected) {
      throw new ModelMismatchError(
        `${port}[${l}] must be a Float32Array of ${expected} values, got ${values?.length}`,
        { port, layer: l, expected },
      )
    }
    const bad = firstNonFinite(values)
    if (bad >= 0) throw new NumericError(`${port}[${l}][${bad}] is ${values[bad]}`, { port })
  })
  return data
}
