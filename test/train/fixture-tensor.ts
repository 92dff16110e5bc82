/**
 * @module Tensors of the training fixtures (`test/fixtures/<id>.json`, train-reference.json):
 * `{dtype, dims, b64}` with little-endian bytes in base64 (train/export.py).
 */

/** One fixture tensor; `dtype` absent means float32 (train-reference.json's weights). */
export interface FixtureTensor {
  dtype?: 'float32' | 'int64' | 'uint8'
  dims: number[]
  b64: string
}

/** The tensor's bytes in a fresh, aligned ArrayBuffer (Buffer views may have any byteOffset). */
export function fixtureBytes(t: FixtureTensor): ArrayBuffer {
  const buf = Buffer.from(t.b64, 'base64')
  const out = new ArrayBuffer(buf.length)
  new Uint8Array(out).set(buf)
  return out
}

/** The tensor's values as the typed array of its dtype. */
export function fixtureArray(t: FixtureTensor & { dtype: 'int64' }): BigInt64Array
export function fixtureArray(t: FixtureTensor): Float32Array | BigInt64Array | Uint8Array
export function fixtureArray(t: FixtureTensor): Float32Array | BigInt64Array | Uint8Array {
  const buf = fixtureBytes(t)
  const dtype = t.dtype ?? 'float32'
  return dtype === 'float32' ? new Float32Array(buf) : dtype === 'int64' ? new BigInt64Array(buf) : new Uint8Array(buf)
}

/** A float32 tensor's values. @throws Error for another dtype */
export function fixtureF32(t: FixtureTensor): Float32Array {
  if ((t.dtype ?? 'float32') !== 'float32') throw new Error(`fixture tensor is ${t.dtype}, not float32`)
  return new Float32Array(fixtureBytes(t))
}
