/**
 * @module PNG encoding of a framebuffer (fast-png, pure JS: runs in Node and workerd).
 */
import { encode } from 'fast-png'
import type { Frame } from './raster.ts'

/**
 * Encode an RGB8 frame as a PNG (8-bit RGB, no alpha, no metadata): same bytes on every machine.
 * @returns PNG file bytes
 */
export function framePng(frame: Frame): Uint8Array {
  return encode({
    width: frame.width,
    height: frame.height,
    data: frame.data,
    channels: 3,
    depth: 8,
  })
}
