/**
 * @module Checks every feed against the model manifest before `run()`: names, dtypes, ranks, fixed
 * dims (head counts, headDim) and the consistency of symbolic dims (batch, seq, past, total).
 * ORT's own errors for a bad feed are opaque wasm aborts; this names the input instead.
 */
import { FeedError } from '../memory/errors.ts'
import type { ModelManifest } from './manifest.ts'

/** A host tensor as stepkv builds it: flat typed data, dims row-major. int64 data is BigInt64Array. */
export interface HostTensor {
  dtype: 'float32' | 'int64' | 'uint8'
  dims: readonly number[]
  data: Float32Array | BigInt64Array | Uint8Array
}

/**
 * Validates `feeds` against `manifest.inputs`.
 * Symbolic dims must agree across inputs; `total` must equal `past + seq` when all three appear.
 * @throws FeedError naming the input (missing, unknown, dtype, rank, dim or data length mismatch)
 */
export function checkFeeds(manifest: ModelManifest, feeds: Record<string, HostTensor>): void {
  const symbols = new Map<string, { value: number; from: string }>()
  for (const name of Object.keys(feeds)) {
    if (!manifest.inputs.some((p) => p.name === name))
      throw new FeedError(`unknown model input '${name}'`, { input: name, model: manifest.id })
  }
  for (const port of manifest.inputs) {
    const t = feeds[port.name]
    if (!t) throw new FeedError(`missing model input '${port.name}'`, { input: port.name })
    if (t.dtype !== port.dtype)
      throw new FeedError(`input '${port.name}' has dtype ${t.dtype}, model expects ${port.dtype}`, {
        input: port.name,
      })
    if (t.dims.length !== port.dims.length)
      throw new FeedError(
        `input '${port.name}' has rank ${t.dims.length} (dims [${t.dims}]), model expects rank ${port.dims.length} ([${port.dims}])`,
        { input: port.name },
      )
    const size = t.dims.reduce((a, b) => a * b, 1)
    if (t.data.length !== size)
      throw new FeedError(
        `input '${port.name}' has ${t.data.length} elements, dims [${t.dims}] need ${size}`,
        { input: port.name },
      )
    port.dims.forEach((want, axis) => {
      const got = t.dims[axis]
      if (!Number.isInteger(got) || got < 0)
        throw new FeedError(`input '${port.name}' dim ${axis} is ${got}`, { input: port.name })
      if (typeof want === 'number') {
        if (got !== want)
          throw new FeedError(
            `input '${port.name}' dim ${axis} is ${got}, model expects ${want}`,
            { input: port.name, axis },
          )
        return
      }
      const seen = symbols.get(want)
      if (seen && seen.value !== got)
        throw new FeedError(
          `input '${port.name}' dim ${axis} ('${want}') is ${got}, but '${seen.from}' gives ${want} = ${seen.value}`,
          { input: port.name, axis },
        )
      if (!seen) symbols.set(want, { value: got, from: port.name })
    })
  }
  const past = symbols.get('past')?.value
  const seq = symbols.get('seq')?.value
  const total = symbols.get('total')
  if (past !== undefined && seq !== undefined && total && total.value !== past + seq)
    throw new FeedError(
      `input '${total.from}' covers ${total.value} tokens, past (${past}) + seq (${seq}) = ${past + seq}`,
      { input: total.from },
    )
  if (seq === 0) throw new FeedError('a step needs at least one prefix token', { seq })
}
