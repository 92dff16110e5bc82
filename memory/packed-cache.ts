/**
 * @module The stored form of a layer that `roundTrip` computed (KIVI parts, float16 bits), kept
 * so the `encodeMemory` that follows it (the Durable Object persists what it will run on) reuses
 * it instead of quantizing a second time. Keyed weakly by the layer object `roundTrip` returned,
 * and valid only while that layer still holds the very arrays it was computed for.
 *
 * Memories are values: nothing in stepkv writes into a memory's arrays after building it (every
 * operation returns new arrays). Code that does must not hand such a layer to `encodeMemory`
 * expecting the new contents, nor the memory as `roundTrip`'s `previous` (whose remembered groups
 * the next memory's quantization copies): replace the arrays instead (e.g.
 * `{ ...layer, keys: edited }`).
 */
import type { PackedKiviLayer } from './kivi.ts'
import type { LayerMemory } from './types.ts'

/** What a layer was packed as: KIVI parts, or float16 bits of K/V. */
export type PackedForm =
  | { kivi: PackedKiviLayer }
  | { half: { keys: Uint16Array; values: Uint16Array } }

interface Entry {
  /** The storage the form is for (dtype and every setting that changes the bytes). */
  key: string
  keys: Float32Array
  values: Float32Array
  positions: Int32Array
  form: PackedForm
}

const packed = new WeakMap<LayerMemory, Entry>()

/**
 * Remember the stored form of `layer` (as returned by `roundTrip`) under the storage `key`.
 * @param key a string naming the storage exactly (e.g. `kivi:4:32:64:float16:float16`)
 */
export function rememberPacked(layer: LayerMemory, key: string, form: PackedForm): void {
  const { keys, values, positions } = layer
  packed.set(layer, { key, keys, values, positions, form })
}

/**
 * The stored form remembered for `layer` under `key`, if the layer still holds the same K/V and
 * position arrays; undefined otherwise (compute it).
 */
export function packedOf(layer: LayerMemory, key: string): PackedForm | undefined {
  const entry = packed.get(layer)
  if (!entry || entry.key !== key) return undefined
  const same =
    entry.keys === layer.keys &&
    entry.values === layer.values &&
    entry.positions === layer.positions
  return same ? entry.form : undefined
}
