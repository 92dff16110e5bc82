import { describe, expect, it } from 'vitest'
import { decodeTensor, elementCount, encodeTensor, isDType } from '../../memory/tensor.ts'

describe('tensor bytes', () => {
  it('round-trips int8, uint8, int32 and float32 bit-exactly, also from an odd byteOffset', () => {
    const cases = [
      { dtype: 'int8', dims: [2, 2], data: Int8Array.from([-128, -1, 0, 127]) },
      { dtype: 'uint8', dims: [3], data: Uint8Array.from([0, 128, 255]) },
      { dtype: 'int32', dims: [2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1]) },
      {
        dtype: 'float32',
        dims: [1, 3],
        data: Float32Array.from([-0, 1e-45, -3.4028234663852886e38]),
      },
    ] as const
    for (const tensor of cases) {
      const bytes = encodeTensor(tensor)
      const shifted = new Uint8Array(bytes.byteLength + 1).subarray(1)
      shifted.set(bytes)
      for (const source of [bytes, shifted]) {
        const back = decodeTensor(tensor.dtype, tensor.dims, source)
        expect(back.constructor).toBe(tensor.data.constructor)
        expect(new Uint8Array(back.buffer, back.byteOffset, back.byteLength)).toEqual(bytes)
      }
    }
  })

  it('writes little-endian bytes', () => {
    // 1.0f = 0x3F800000 → bytes 00 00 80 3F; int32 258 = 0x102 → 02 01 00 00
    expect([...encodeTensor({ dtype: 'float32', dims: [1], data: Float32Array.of(1) })]).toEqual([
      0, 0, 0x80, 0x3f,
    ])
    expect([...encodeTensor({ dtype: 'int32', dims: [1], data: Int32Array.of(258) })]).toEqual([
      2, 1, 0, 0,
    ])
  })

  it('names both numbers when dims and data disagree', () => {
    expect(() => encodeTensor({ dtype: 'int32', dims: [2, 3], data: new Int32Array(5) })).toThrow(
      'tensor data has 5 elements, dims [2,3] need 6',
    )
    expect(() => decodeTensor('float32', [2], new Uint8Array(7))).toThrow(
      'float32 [2] needs 8 bytes, got 7',
    )
    expect(() =>
      encodeTensor({ dtype: 'float16', dims: [1], data: new Float32Array(1) as never }),
    ).toThrow(TypeError)
    expect(() => elementCount([2, -1])).toThrow(RangeError)
    expect([isDType('float16'), isDType('bfloat16'), isDType('toString')]).toEqual([
      true,
      false,
      false,
    ])
  })
})
