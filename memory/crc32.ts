/**
 * @module CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) behind one function, so the
 * implementation can be swapped. The default is `node:zlib`'s native `crc32` (Node ≥ 22.2, and
 * workerd with `nodejs_compat`, where it runs at ≈ 14 GB/s). Node's build of it is zlib's scalar
 * braided loop (≈ 5 GB/s here, below a memcpy), so Node processes install a SIMD one at start-up
 * (`crc32-node.ts`: `@node-rs/crc32`, ≈ 13 GB/s); `useCrc32` checks any replacement against
 * `node:zlib` before it takes over.
 */
import { crc32 as zlibCrc32 } from 'node:zlib'

/** CRC-32 of `bytes`, continuing from `initial` (the CRC-32 of the bytes before them, 0 for none). */
type Crc32 = (bytes: Uint8Array, initial?: number) => number

const zlib: Crc32 = (bytes, initial = 0) => zlibCrc32(bytes, initial) >>> 0
let impl: Crc32 = zlib
let implName = 'node:zlib'

/**
 * CRC-32 of a byte range (the zlib/PNG/gzip checksum; check value of "123456789" is 0xCBF43926).
 * Continues a running checksum: `crc32(b, crc32(a))` equals the CRC-32 of `a` then `b`, so a
 * buffer can be checksummed piece by piece while it is written (`encodeMemory`).
 * @param bytes Uint8Array view (any byteOffset); only its `byteLength` bytes are read
 * @param initial the CRC-32 of the bytes before `bytes` (default 0: none), taken modulo 2^32
 *   (a CRC held as a signed 32-bit integer continues the same)
 * @returns unsigned 32-bit checksum, 0 … 2^32 − 1
 */
export function crc32(bytes: Uint8Array, initial = 0): number {
  return impl(bytes, initial >>> 0)
}

/** The name of the CRC-32 implementation in use (`node:zlib` unless `useCrc32` installed another). */
export function crc32Implementation(): string {
  return implName
}

/**
 * Installs another CRC-32 implementation for this process (every later `crc32` call, the memory
 * codec's included), after checking that it agrees with `node:zlib` on the standard check value,
 * on the empty input, on unaligned views of pseudo-random bytes of 1 … 4,099 bytes, and when
 * continuing from an initial value (each of those inputs split in two).
 * @param fn the implementation, `(bytes, initial) => crc` (its result is taken modulo 2^32)
 * @param name what `crc32Implementation` reports, e.g. `@node-rs/crc32`
 * @throws RangeError naming the input it disagrees on (the implementation in use is kept)
 */
export function useCrc32(fn: Crc32, name: string): void {
  const inputs: Uint8Array[] = [new TextEncoder().encode('123456789'), new Uint8Array(0)]
  let x = 0x9e3779b9
  const random = new Uint8Array(4100)
  for (let i = 0; i < random.length; i++) random[i] = (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 24
  for (const n of [1, 7, 64, 1000, 4099]) inputs.push(random.subarray(1, 1 + n))
  for (const bytes of inputs) {
    const [got, want] = [fn(bytes, 0) >>> 0, zlib(bytes)]
    if (got !== want)
      throw new RangeError(`CRC-32 implementation '${name}' gives ${got.toString(16)} on ${bytes.length} bytes, node:zlib ${want.toString(16)}`)
    const split = bytes.length >> 1
    const continued = fn(bytes.subarray(split), fn(bytes.subarray(0, split), 0) >>> 0) >>> 0
    if (continued !== want)
      throw new RangeError(`CRC-32 implementation '${name}' gives ${continued.toString(16)} on ${bytes.length} bytes continued after ${split}, node:zlib ${want.toString(16)}`)
  }
  impl = (bytes, initial = 0) => fn(bytes, initial) >>> 0
  implName = name
}

/** Goes back to `node:zlib` (tests). */
export function useZlibCrc32(): void {
  impl = zlib
  implName = 'node:zlib'
}
