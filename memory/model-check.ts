/**
 * @module Model identity and geometry checks: a memory (or a blob's header) must belong to the
 * model that will read it (same sha256), have its KV heads and head size, and hold the model
 * layers it expects (all of them for a carried KV cache, or e.g. a TempoFit bank's `layerIds`).
 */
import { ModelMismatchError } from './errors.ts'
import type { SessionMemory } from './types.ts'

/** A model's identity: `sha256` (hex of the .onnx bytes) is what counts; `id` names it in messages. */
export interface ModelRef {
  id: string
  sha256: string
}

/**
 * What a memory must match: the model and its KV geometry.
 * - `layers`: the model's layer count.
 * - `layerIds`: the model layers the memory stores, strictly increasing within `[0, layers)`
 *   (e.g. `[1, 2]` for a TempoFit bank of a 4-layer model: 2 stored layers); absent = all layers.
 */
export interface MemoryShape {
  model: ModelRef
  layers: number
  kvHeads: number
  headDim: number
  layerIds?: readonly number[]
}

/**
 * What a memory (or a blob's header) holds: `layers` is its number of stored layers and
 * `layerIds` the model layer of each (absent = stored layer i is model layer i).
 */
export interface StoredShape {
  model: ModelRef
  layers: number
  kvHeads: number
  headDim: number
  layerIds?: readonly number[]
}

const describeIds = (ids: readonly number[] | undefined, layers: number): string =>
  ids ? `model layers [${ids}]` : `all ${layers} layers`

/**
 * Refuse a stored shape that belongs to another model or disagrees with its geometry.
 * Identity is `sha256`; `id` only names the models in the message. The stored layers must be
 * exactly the expected model layers: `actual.layerIds ?? [0 … actual.layers)` equals
 * `expected.layerIds ?? [0 … expected.layers)` (nothing is allocated from untrusted counts).
 * @param actual what a memory (or a blob's header) holds
 * @param expected what the model requires
 * @throws ModelMismatchError naming what differs, with expected and actual values; RangeError if
 *   `expected.layerIds` is not strictly increasing within `[0, expected.layers)`
 */
export function checkModelShape(actual: StoredShape, expected: MemoryShape): void {
  const [mine, theirs] = [actual.model, expected.model]
  if (mine.sha256 !== theirs.sha256) {
    throw new ModelMismatchError(
      `memory belongs to model ${mine.id} (sha256 ${mine.sha256.slice(0, 12)}…), not ${theirs.id} (sha256 ${theirs.sha256.slice(0, 12)}…)`,
      { expected: theirs.sha256, actual: mine.sha256 },
    )
  }
  const wanted = expected.layerIds
  if (
    wanted?.some(
      (id, i) => !Number.isInteger(id) || id < 0 || id >= expected.layers || id <= wanted[i - 1],
    )
  ) {
    throw new RangeError(
      `expected layerIds [${wanted}] must ascend strictly within [0, ${expected.layers})`,
    )
  }
  if (!wanted && !actual.layerIds) {
    if (actual.layers !== expected.layers) {
      throw new ModelMismatchError(
        `memory has layers ${actual.layers}, model ${theirs.id} has ${expected.layers}`,
        { field: 'layers', expected: expected.layers, actual: actual.layers },
      )
    }
  } else {
    const count = wanted ? wanted.length : expected.layers
    const same =
      actual.layers === count &&
      (actual.layerIds === undefined || actual.layerIds.length === count) &&
      Array.from({ length: count }, (_, i) => i).every(
        (i) => (actual.layerIds?.[i] ?? i) === (wanted?.[i] ?? i),
      )
    if (!same) {
      const holds = describeIds(actual.layerIds, actual.layers)
      const needs = describeIds(wanted, expected.layers)
      throw new ModelMismatchError(`memory holds ${holds}, model ${theirs.id} expects ${needs}`, {
        field: 'layerIds',
        expected: wanted ? [...wanted] : expected.layers,
        actual: actual.layerIds ? [...actual.layerIds] : actual.layers,
      })
    }
  }
  for (const key of ['kvHeads', 'headDim'] as const) {
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
 * @param model e.g. a `ModelManifest`: `{ id, sha256, layers, kvHeads, headDim }` (`layers` = the
 *   model's layer count)
 * @param layerIds the model layers the memory must store (e.g. the manifest's `tempoLayers` for a
 *   TempoFit bank); absent = all `model.layers`
 * @throws ModelMismatchError naming what differs, with expected and actual values
 */
export function checkMemoryAgainstModel(
  mem: SessionMemory,
  model: { id: string; sha256: string; layers: number; kvHeads: number; headDim: number },
  layerIds?: readonly number[],
): void {
  const { kvHeads, headDim } = mem
  checkModelShape(
    { model: mem.model, layers: mem.layers.length, kvHeads, headDim, layerIds: mem.layerIds },
    {
      model: { id: model.id, sha256: model.sha256 },
      layers: model.layers,
      kvHeads: model.kvHeads,
      headDim: model.headDim,
      ...(layerIds && { layerIds }),
    },
  )
}
