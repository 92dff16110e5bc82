/**
 * @module Dtypes and flat little-endian tensor bytes, shared by the memory codec and anyone who
 * ships typed arrays as bytes. A dtype string maps to one typed array (float16 → Uint16Array of
 * raw bits), as in onnxruntime-common.
 */

/** Storage dtypes a tensor may have. */
export type DType = 'float32' | 'float16' | 'int32' | 'uint8' | 'int8'

/** The typed array each dtype is held in (float16 as raw bits). */
export interface DTypeArrays {
  float32: Float32Array
  float16: Uint16Array
  int32: Int32Array
  uint8: Uint8Array
  int8: Int8Array
}

/** A flat typed array with its dtype and dims (row-major). */
export interface Tensor<D extends DType = DType> {
  dtype: D
  dims: readonly number[]
  data: DTypeArrays[D]
}

const CTORS = {
  float32: Float32Array,
  float16: Uint16Array,
  int32: Int32Array,
  uint8: Uint8Array,
  int8: Int8Array,
} as const

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4,
  float16: 2,
  int32: 4,
  uint8: 1,
  int8: 1,
}

/** True when `name` is a known dtype (guards strings read from untrusted headers). */
export function isDType(name: unknown): name is DType {
  return typeof name === 'string' && Object.hasOwn(DTYPE_BYTES, name)
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/**
 * Number of elements of a tensor with these dims.
 * @param dims non-negative safe integers; `[]` is a scalar (1 element)
 * @throws RangeError if a dim is not a non-negative safe integer or the product is not safe
 */
export function elementCount(dims: readonly number[]): number {
  let count = 1
  for (const dim of dims) {
    if (!Number.isSafeInteger(dim) || dim < 0) throw new RangeError(`bad dim ${dim} in [${dims}]`)
    count *= dim
  }
  if (!Number.isSafeInteger(count)) throw new RangeError(`dims [${dims}] overflow`)
  return count
}

/**
 * The tensor's bytes, little-endian, without copying (a view over `data`'s buffer).
 * @returns Uint8Array of `elementCount(dims) · DTYPE_BYTES[dtype]` bytes
 * @throws TypeError if `data` is not the dtype's typed array; RangeError if its length is not
 *   the product of `dims` (both numbers named) or the host is big-endian
 */
export function encodeTensor(tensor: Tensor): Uint8Array {
  const { dtype, dims, data } = tensor
  if (!(data instanceof CTORS[dtype]))
    throw new TypeError(`${dtype} tensor needs a ${CTORS[dtype].name}`)
  const count = elementCount(dims)
  if (data.length !== count) {
    throw new RangeError(`tensor data has ${data.length} elements, dims [${dims}] need ${count}`)
  }
  if (!LITTLE_ENDIAN) throw new RangeError('big-endian hosts are not supported')
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

/**
 * Typed array over little-endian tensor bytes. Zero copy when `bytes.byteOffset` is a multiple of
 * the element size (the result then aliases `bytes.buffer`); otherwise the bytes are copied.
 * @param bytes exactly `elementCount(dims) · DTYPE_BYTES[dtype]` bytes
 * @returns the dtype's typed array `[product(dims)]`
 * @throws RangeError if the byte length disagrees with dims (both numbers named)
 */
export function decodeTensor<D extends DType>(
  dtype: D,
  dims: readonly number[],
  bytes: Uint8Array,
): DTypeArrays[D] {
  const count = elementCount(dims)
  const itemBytes = DTYPE_BYTES[dtype]
  if (bytes.byteLength !== count * itemBytes) {
    throw new RangeError(
      `${dtype} [${dims}] needs ${count * itemBytes} bytes, got ${bytes.byteLength}`,
    )
  }
  if (!LITTLE_ENDIAN) throw new RangeError('big-endian hosts are not supported')
  const source = bytes.byteOffset % itemBytes === 0 ? bytes : new Uint8Array(bytes)
  return new CTORS[dtype](source.buffer as ArrayBuffer, source.byteOffset, count) as DTypeArrays[D]
}
