/**
 * @module The inspector page's screenshots: for sessions created with `retainFrames: N`
 * (`frames.ts`), the retained observations of the frames drawn as heat maps, as PNG data URLs per
 * camera (a GUI screenshot is PNG already; a robot's raw RGB8 frame is encoded with fast-png).
 * Frames not retained (older than the last N, or retention off) simply have no screenshot.
 */
import { encode as encodePng } from 'fast-png'
import type { CameraSpec } from '../gpu/manifest.ts'
import { unpackBody } from './body.ts'
import type { SessionObject } from './session-object.ts'

/** Base64 of bytes (chunked: no spread of a large array). */
function base64(bytes: Uint8Array): string {
  let bin = ''
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(bin)
}

/** A camera frame as sent (PNG bytes, or `{width, height, data}` RGB8) → a PNG data URL, or null. */
export function frameDataUrl(frame: unknown): string | null {
  if (frame instanceof Uint8Array) return `data:image/png;base64,${base64(frame)}`
  const raw = frame as { width?: unknown; height?: unknown; data?: unknown } | null
  if (raw && typeof raw.width === 'number' && typeof raw.height === 'number' && raw.data instanceof Uint8Array && raw.data.length === raw.width * raw.height * 3)
    return `data:image/png;base64,${base64(encodePng({ width: raw.width, height: raw.height, data: raw.data, channels: 3, depth: 8 }))}`
  return null
}

/**
 * The retained screenshots of `frames`, keyed `"<frame>/<camera name>"`.
 * @param cameras the model's cameras in prefix order: a GUI observation's `image` is camera 0, a
 *   robot's `images[i]` camera i
 * @returns an empty map when the session retains nothing
 */
export async function retainedScreens(stub: DurableObjectStub<SessionObject>, tenant: string, frames: number[], cameras: CameraSpec[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const frame of frames) {
    const r = await stub.retainedFrame(tenant, frame)
    if (!r.ok) continue
    const obs = unpackBody(r.value as Uint8Array) as { image?: unknown; images?: unknown[] }
    const sent = obs.images ?? (obs.image === undefined ? [] : [obs.image])
    cameras.forEach((camera, i) => {
      const url = frameDataUrl(sent[i])
      if (url) out.set(`${frame}/${camera.name}`, url)
    })
  }
  return out
}
