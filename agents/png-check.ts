/**
 * @module A bounded pre-check of untrusted PNG bytes, run before the PNG decoder: chunk framing and
 * CRC-32 of every chunk (PNG spec §5.3), an IHDR the decoder can take, and the compressed image
 * data (IDAT) inflated in small slices with a running count, so a small file that inflates to
 * gigabytes (a "decompression bomb") is refused after at most one slice past its declared size
 * instead of being inflated whole. The decoder (fast-png) then inflates a stream known to be
 * bounded. Spec: W3C PNG (Third Edition) §5 (datastream), §11.2 (IHDR), §8.2 (Adam7).
 */
import { Unzlib } from 'fflate'
import { crc32 } from '../memory/crc32.ts'

/** Channels per pixel by PNG colour type (§11.2.2). */
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }
/** Adam7 passes: x start, y start, x step, y step (§8.2). */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]]
/** Compressed bytes fed to the inflater per slice: at most ~1 MiB of output per slice (deflate's ratio is < 1032:1). */
const SLICE = 1024

/** What a well-formed PNG declares. */
export interface PngHeader {
  width: number
  height: number
  bitDepth: number
  colorType: number
  interlace: number
  /** Bytes the image data must inflate to: filter byte + packed row, per row (and pass). */
  rawBytes: number
}

/**
 * Bytes of filtered image data a PNG of this header holds (§7.2, §8.2): per row one filter byte
 * plus ceil(width × channels × bitDepth / 8); for Adam7 the sum over the non-empty passes.
 */
export function rawImageBytes(width: number, height: number, channels: number, bitDepth: number, interlace: number): number {
  const row = (w: number) => 1 + Math.ceil((w * channels * bitDepth) / 8)
  if (!interlace) return height * row(width)
  let total = 0
  for (const [xs, ys, dx, dy] of ADAM7) {
    const w = Math.ceil((width - xs) / dx)
    const h = Math.ceil((height - ys) / dy)
    if (w > 0 && h > 0) total += h * row(w)
  }
  return total
}

/**
 * Checks a PNG's framing, CRCs and header, and that its image data inflates to exactly the size
 * the header implies, reading at most `maxRawBytes` (+ one slice) of inflated output.
 * @param maxRawBytes refuse headers implying more filtered image data than this (bytes)
 * @returns the header
 * @throws Error with a message naming what is wrong (callers map it to a 400 problem)
 */
export function checkPng(bytes: Uint8Array, maxRawBytes: number): PngHeader {
  const sig = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
  if (bytes.length < 8 || sig.some((b, i) => bytes[i] !== b)) throw new Error('no PNG signature')
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let at = 8
  let header: PngHeader | undefined
  const idat: Uint8Array[] = []
  let sawEnd = false
  while (at < bytes.length) {
    if (at + 12 > bytes.length) throw new Error('truncated chunk')
    const length = view.getUint32(at)
    if (length > bytes.length - at - 12) throw new Error('chunk length past the end of the file')
    const type = String.fromCharCode(bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7])
    const body = bytes.subarray(at + 8, at + 8 + length)
    const crc = view.getUint32(at + 8 + length)
    if (crc32(bytes.subarray(at + 4, at + 8 + length)) !== crc) throw new Error(`bad CRC in chunk ${JSON.stringify(type)}`)
    if (!header && type !== 'IHDR') throw new Error('IHDR is not the first chunk')
    if (type === 'IHDR') {
      if (header) throw new Error('second IHDR')
      if (length !== 13) throw new Error('IHDR must be 13 bytes')
      const b = new DataView(body.buffer, body.byteOffset, 13)
      const [width, height, bitDepth, colorType, compression, filter, interlace] =
        [b.getUint32(0), b.getUint32(4), body[8], body[9], body[10], body[11], body[12]]
      const channels = CHANNELS[colorType]
      if (!channels) throw new Error(`colour type ${colorType} is not a PNG colour type`)
      if (width < 1 || height < 1) throw new Error('zero image size')
      if (![1, 2, 4, 8, 16].includes(bitDepth)) throw new Error(`bit depth ${bitDepth}`)
      if (compression !== 0 || filter !== 0 || interlace > 1) throw new Error('unknown compression, filter or interlace method')
      const rawBytes = rawImageBytes(width, height, channels, bitDepth, interlace)
      if (rawBytes > maxRawBytes) throw new Error(`declares ${rawBytes} bytes of image data (limit ${maxRawBytes})`)
      header = { width, height, bitDepth, colorType, interlace, rawBytes }
    } else if (type === 'IDAT') idat.push(body)
    else if (type === 'IEND') {
      sawEnd = true
      break
    }
    at += 12 + length
  }
  if (!header) throw new Error('no IHDR')
  if (!sawEnd) throw new Error('no IEND')
  if (!idat.length) throw new Error('no image data')
  let out = 0
  let done = false
  const limit = header.rawBytes
  const inflater = new Unzlib((chunk, final) => {
    out += chunk.length
    if (final) done = true
  })
  try {
    for (const part of idat)
      for (let i = 0; i < part.length; i += SLICE) {
        inflater.push(part.subarray(i, Math.min(part.length, i + SLICE)))
        if (out > limit) throw new Error(`image data inflates past the ${limit} bytes its header declares`)
      }
    inflater.push(new Uint8Array(0), true)
  } catch (e) {
    throw new Error(`bad image data: ${(e as Error).message}`)
  }
  if (out !== limit) throw new Error(`image data inflates to ${out} bytes, its header declares ${limit}`)
  if (!done) throw new Error('image data stream does not end')
  return header
}
