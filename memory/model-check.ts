/**
 * @module Model identity and geometry checks: a memory (or a blob's header) must belong to the
 * model that will read it (same sha256) and have its layers, KV heads and head size.
 */
import { ModelMismatchError } from './errors.ts'
import type { SessionMemory } from './types.ts'

/** A model's identity: `sha256` (hex of the .onnx bytes) is what counts; `id` names it in messages. */
export interface ModelRef {
  id: string
  sha256: string
}

/** What a memory must match: the model and its KV geometry. */
export interface MemoryShape {
  model: ModelRef
  layers: number
  kvHeads: number
  headDim: number
}

/**
 * Refuse a stored shape that belongs to another model or disagrees with its geometry.
 * Identity is `sha256`; `id` only names the models in the message.
 * @param actual what a memory (or a blob's header) holds
 * @param expected what the model requires
 * @throws ModelMismatchError naming what differs, with expected and actual values
 */
export function checkModelShape(actual: MemoryShape, expected: MemoryShape): void {
  const [mine, theirs] = [actual.model, expected.model]
  if (mine.sha256 !== theirs.sha256) {
    throw new ModelMismatchError(
      `memory belongs to model ${mine.id} (sha256 ${mine.sha256.slice(0, 12)}…), not ${theirs.id} (sha256 ${theirs.sha256.slice(0, 12)}…)`,
      { expected: theirs.sha256, actual: mine.sha256 },
    )
  }
  for (const key of ['layers', 'kvHeads', 'headDim'] as const) {
    if (actual[key] !== expected[key]) {
      throw new ModelMismatchError(
        `memory has ${key} ${actual[key]}, model ${theirs.id} has ${expected[key]}`,
        {
          field: key,
          expected: expected[key],
          actual: actual[key],
        },
      )
    }
  }
}

/**
 * Refuse a memory that belongs to another model or disagrees with its geometry (`checkModelShape`).
 * @param model e.g. a `ModelManifest`: `{ id, sha256, layers, kvHeads, headDim }`
 * @throws ModelMismatchError naming what differs, with expected and actual values
 */
export function checkMemoryAgainstModel(
  mem: SessionMemory,
  model: { id: string; sha256: string; layers: number; kvHeads: number; headDim: number },
): void {
  const { kvHeads, headDim } = mem
  checkModelShape(
    { model: mem.model, layers: mem.layers.length, kvHeads, headDim },
    {
      model: { id: model.id, sha256: model.sha256 },
      layers: model.layers,
      kvHeads: model.kvHeads,
      headDim: model.headDim,
    },
  )
}
