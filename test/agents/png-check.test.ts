import { deflateSync, crc32 } from 'node:zlib'
import { encode } from 'fast-png'
import { describe, expect, it } from 'vitest'
import { checkPng, rawImageBytes } from '../../agents/png-check.ts'
import { frameRgb } from '../../agents/encoder.ts'
import type { CameraSpec } from '../../gpu/manifest.ts'

/** A PNG assembled by hand (node:zlib for deflate and CRC, independent of the code under test). */
function png(width: number, height: number, idat: Uint8Array, opts: { colorType?: number; bitDepth?: number; interlace?: number; badCrc?: string } = {}) {
  const chunk = (type: string, body: Uint8Array) => {
    const out = new Uint8Array(12 + body.length)
    const v = new DataView(out.buffer)
    v.setUint32(0, body.length)
    out.set(new TextEncoder().encode(type), 4)
    out.set(body, 8)
    const crc = crc32(out.subarray(4, 8 + body.length))
    v.setUint32(8 + body.length, opts.badCrc === type ? (crc ^ 1) >>> 0 : crc)
    return out
  }
  const ihdr = new Uint8Array(13)
  const v = new DataView(ihdr.buffer)
  v.setUint32(0, width)
  v.setUint32(4, height)
  ihdr.set([opts.bitDepth ?? 8, opts.colorType ?? 2, 0, 0, opts.interlace ?? 0], 8)
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) all.set(p, at), (at += p.length)
  return all
}

const camera = { name: 'top', width: 32, height: 32 } as CameraSpec

describe('PNG pre-check (bounded inflate, CRCs)', () => {
  it('raw image bytes: rows of filter byte + packed pixels; Adam7 passes summed', () => {
    expect(rawImageBytes(32, 32, 3, 8, 0)).toBe(32 * 97)
    expect(rawImageBytes(3, 1, 1, 1, 0)).toBe(2)
    // 8×8 Adam7 RGB8: pass sizes (1×1),(1×1),(2×1),(2×2),(4×2),(4×4),(8×4)
    const passes = [[1, 1], [1, 1], [2, 1], [2, 2], [4, 2], [4, 4], [8, 4]]
    expect(rawImageBytes(8, 8, 3, 8, 1)).toBe(passes.reduce((s, [w, h]) => s + h * (1 + 3 * w), 0))
  })

  it('accepts what fast-png writes and a hand-built PNG of the exact size', () => {
    const data = new Uint8Array(32 * 32 * 3).map((_, i) => (i * 7) & 255)
    const written = encode({ width: 32, height: 32, data, channels: 3, depth: 8 })
    expect(checkPng(written, 1 << 20)).toMatchObject({ width: 32, height: 32, colorType: 2, rawBytes: 32 * 97 })
    expect(frameRgb(written, camera)).toEqual(data)
    expect(checkPng(png(32, 32, deflateSync(new Uint8Array(32 * 97))), 1 << 20).rawBytes).toBe(3104)
  })

  it('refuses a decompression bomb after one slice past the declared size', () => {
    const bomb = png(32, 32, deflateSync(new Uint8Array(64 << 20))) // 64 MiB of zeros, ~65 KB compressed
    expect(() => checkPng(bomb, 1 << 20)).toThrow(/inflates past the 3104 bytes/)
    expect(() => frameRgb(bomb, camera)).toThrow(/not a valid PNG/)
  })

  it('refuses bad CRCs, short or long image data, bad headers, truncation', () => {
    const ok = deflateSync(new Uint8Array(32 * 97))
    expect(() => checkPng(png(32, 32, ok, { badCrc: 'IDAT' }), 1 << 20)).toThrow(/bad CRC in chunk "IDAT"/)
    expect(() => checkPng(png(32, 32, ok, { badCrc: 'IHDR' }), 1 << 20)).toThrow(/bad CRC/)
    expect(() => checkPng(png(32, 32, deflateSync(new Uint8Array(32 * 97 - 1))), 1 << 20)).toThrow(/inflates to 3103 bytes/)
    expect(() => checkPng(png(32, 32, ok, { colorType: 5 }), 1 << 20)).toThrow(/colour type 5/)
    expect(() => checkPng(png(32, 32, ok, { bitDepth: 3 }), 1 << 20)).toThrow(/bit depth 3/)
    expect(() => checkPng(png(4096, 4096, ok), 1 << 20)).toThrow(/declares .* bytes of image data/)
    const good = png(32, 32, ok)
    expect(() => checkPng(good.subarray(0, good.length - 5), 1 << 20)).toThrow(/truncated|past the end|no IEND/)
    expect(() => checkPng(png(32, 32, new Uint8Array([1, 2, 3, 4])), 1 << 20)).toThrow(/bad image data|inflates/)
  })
})
