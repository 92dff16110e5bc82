/**
 * The codec bench's pieces: the plain-JS CRC-32 it compares against equals the native one (check
 * value of "123456789" = 0xCBF43926), throughput counts calls, and `measureCodec` reports every
 * operation with the blob size of its storage.
 */
import { describe, expect, it } from 'vitest'
import { crc32Js, measureCodec, throughput } from '../../bench/codec-core.ts'
import { encodeMemory } from '../../memory/codec.ts'
import { crc32 } from '../../memory/crc32.ts'
import { appendPrefix, emptyMemory } from '../../memory/session.ts'

describe('crc32Js', () => {
  it('gives the standard check value and agrees with the native CRC', () => {
    expect(crc32Js(new TextEncoder().encode('123456789'))).toBe(0xcbf43926)
    const bytes = Uint8Array.from({ length: 4099 }, (_, i) => (i * 2654435761) >>> 24)
    expect(crc32Js(bytes)).toBe(crc32(bytes))
    expect(crc32Js(bytes.subarray(3, 1000))).toBe(crc32(bytes.subarray(3, 1000)))
  })
})

describe('throughput', () => {
  it('runs at least 3 measured calls and converts bytes per ms to MB/s', () => {
    let t = 0
    let calls = 0
    // a fake clock: each call takes 2 ms; 1e6 bytes per call → 1e6 B / 2 ms = 500 MB/s
    const r = throughput(1e6, () => ((t += 2), calls++), 5, () => t)
    expect(r.calls).toBe(3)
    expect(calls).toBe(6) // 3 unmeasured + 3 measured
    expect(r.mbPerS).toBe(500)
  })
})

describe('measureCodec', () => {
  it('measures encode and decode per storage, copy, CRC and HMAC on the float32 blob', async () => {
    const kvHeads = 2, headDim = 8, tokens = 40
    const base = emptyMemory({ model: { id: 'm', sha256: '0'.repeat(64) }, layers: 2, kvHeads, headDim })
    const kv = () => Float32Array.from({ length: kvHeads * tokens * headDim }, (_, i) => Math.sin(i))
    const mem = appendPrefix(base, [0, 1].map(() => ({ key: kv(), value: kv() })), {
      seq: 1,
      positions: Int32Array.from({ length: tokens }, (_, i) => i),
      kinds: new Uint8Array(tokens),
    })
    const blob = encodeMemory(mem, { policy: { name: 'full', params: {} }, dtype: 'float32' })
    const rows = await measureCodec(blob, 5)
    expect(rows.map((r) => `${r.op}/${r.storage}`)).toEqual([
      'encode/float32', 'decode/float32', 'decode-scan/float32', 'copy/float32', 'crc32/float32', 'crc32-js/float32', 'hmac-sign/float32', 'hmac-verify/float32',
      'encode/float16', 'decode/float16', 'decode-scan/float16', 'encode/kivi4', 'decode/kivi4', 'decode-scan/kivi4',
    ])
    expect(rows[0].bytes).toBe(blob.byteLength)
    expect(rows.find((r) => r.op === 'hmac-verify')!.bytes).toBe(blob.byteLength + 32) // the tag trailer
    expect(rows.find((r) => r.storage === 'float16')!.bytes).toBeLessThan(blob.byteLength)
    for (const r of rows) expect(r.mbPerS).toBeGreaterThan(0)
  })
})
