/**
 * @module A bounded pre-scan of untrusted MessagePack before msgpackr decodes it. msgpackr has no
 * limit options and, by default, builds Map/Set/Date/RegExp/Error objects from extension types
 * (PLATFORM-NOTES.md); the scan admits only plain data, so msgpackr never reaches that code.
 */

/** Limits of a plain-data scan: nesting depth and total number of values; `allowBin` admits
 * msgpack `bin` values (request bodies carry images as bytes; memory headers never do). */
export interface ScanLimits {
  maxDepth: number
  maxValues: number
  allowBin?: boolean
}

/** Type bytes followed by a fixed number of data bytes: floats, uints, ints. */
const FIXED_SIZE = new Map([
  [0xca, 4],
  [0xcb, 8],
  [0xcc, 1],
  [0xcd, 2],
  [0xce, 4],
  [0xcf, 8],
  [0xd0, 1],
  [0xd1, 2],
  [0xd2, 4],
  [0xd3, 8],
])
/** Type bytes followed by a big-endian length of 1, 2 or 4 bytes: str8/16/32, array16/32, map16/32. */
/** bin8/16/32: a big-endian length of 1, 2 or 4 bytes, then that many bytes. */
const BIN_LENGTH_SIZE = new Map([
  [0xc4, 1],
  [0xc5, 2],
  [0xc6, 4],
])
const LENGTH_SIZE = new Map([
  [0xd9, 1],
  [0xda, 2],
  [0xdb, 4],
  [0xdc, 2],
  [0xdd, 4],
  [0xde, 2],
  [0xdf, 4],
])

const isString = (token: number): boolean =>
  (token >= 0xa0 && token <= 0xbf) || (token >= 0xd9 && token <= 0xdb)

/**
 * Check that `bytes` holds exactly one MessagePack value made only of nil, booleans, integers,
 * floats, strings, arrays and string-keyed maps, within `limits`.
 * Refused: ext/fixext (0xc7–0xc9, 0xd4–0xd8), bin (0xc4–0xc6, unless `limits.allowBin`), 0xc1,
 * non-string map keys,
 * lengths past the end, trailing bytes, depth or value count over the limits.
 * @param bytes the encoded value (any byteOffset)
 * @returns a description of the first problem, or undefined when the bytes are plain data
 * @see MessagePack specification, https://github.com/msgpack/msgpack/blob/master/spec.md
 */
export function plainMsgpackProblem(
  bytes: Uint8Array,
  limits: ScanLimits = { maxDepth: 8, maxValues: 100_000 },
): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let position = 0
  let values = 0

  const take = (count: number): number => {
    if (position + count > bytes.byteLength)
      throw new Error(`value at byte ${position} runs past the end`)
    const at = position
    position += count
    return at
  }
  const readLength = (size: number): number => {
    const at = take(size)
    return size === 1 ? view.getUint8(at) : size === 2 ? view.getUint16(at) : view.getUint32(at)
  }
  const scan = (depth: number, isKey: boolean): void => {
    if (++values > limits.maxValues) throw new Error(`more than ${limits.maxValues} values`)
    const token = view.getUint8(take(1))
    if (isKey && !isString(token))
      throw new Error(`map key at byte ${position - 1} is not a string`)
    if (token <= 0x7f || token >= 0xe0 || token === 0xc0 || token === 0xc2 || token === 0xc3) return
    if (token <= 0x8f) return container(depth, token & 0x0f, true)
    if (token <= 0x9f) return container(depth, token & 0x0f, false)
    if (token <= 0xbf) return void take(token & 0x1f)
    const fixed = FIXED_SIZE.get(token)
    if (fixed !== undefined) return void take(fixed)
    const binLengthSize = limits.allowBin ? BIN_LENGTH_SIZE.get(token) : undefined
    if (binLengthSize !== undefined) return void take(readLength(binLengthSize))
    const lengthSize = LENGTH_SIZE.get(token)
    if (lengthSize === undefined) {
      throw new Error(`type byte 0x${token.toString(16)} at byte ${position - 1} is not plain data`)
    }
    const length = readLength(lengthSize)
    if (token <= 0xdb) return void take(length)
    container(depth, length, token >= 0xde)
  }
  const container = (depth: number, entries: number, isMap: boolean): void => {
    if (depth + 1 > limits.maxDepth) throw new Error(`nesting deeper than ${limits.maxDepth}`)
    for (let i = 0; i < entries; i++) {
      if (isMap) scan(depth + 1, true)
      scan(depth + 1, false)
    }
  }
  try {
    scan(0, false)
    if (position !== bytes.byteLength)
      throw new Error(`${bytes.byteLength - position} trailing bytes`)
  } catch (error) {
    return (error as Error).message
  }
  return undefined
}
