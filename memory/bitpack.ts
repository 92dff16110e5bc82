/**
 * @module Little-endian bit packing of small unsigned codes (2 or 4 bits) into bytes.
 *
 * Code `i` of `bits` bits occupies bits `(i · bits) mod 8 …` of byte `⌊i · bits / 8⌋`, least
 * significant first: 4-bit codes c0, c1 pack as `c0 | c1 << 4`; 2-bit codes c0 … c3 as
 * `c0 | c1 << 2 | c2 << 4 | c3 << 6`. A last partial byte has zero high bits.
 */

/** Bytes holding `count` codes of `bits` bits: ⌈count · bits / 8⌉. */
export function packedBytes(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8)
}

/**
 * OR code `code` into slot `index` of a zero-initialised packed array.
 * @param packed Uint8Array of ≥ packedBytes(index + 1, bits) bytes
 * @param code integer in `[0, 2^bits)`
 * @param bits 2 or 4 (any divisor of 8)
 */
export function putCode(packed: Uint8Array, index: number, code: number, bits: number): void {
  const bit = index * bits
  packed[bit >>> 3] |= code << (bit & 7)
}

/**
 * Code in slot `index`.
 * @param bits 2 or 4 (any divisor of 8)
 * @returns integer in `[0, 2^bits)`
 */
export function getCode(packed: Uint8Array, index: number, bits: number): number {
  const bit = index * bits
  return (packed[bit >>> 3] >>> (bit & 7)) & ((1 << bits) - 1)
}

/**
 * True when the bits after the last of `count` codes (the pad of the last byte) are zero, as the
 * packer writes them.
 * @param packed exactly packedBytes(count, bits) bytes
 */
export function paddingIsZero(packed: Uint8Array, count: number, bits: number): boolean {
  const used = (count * bits) & 7
  return used === 0 || packed.length === 0 || packed[packed.length - 1] >>> used === 0
}
