/**
 * @module The prefix encoder shared by the GUI and robot adapters: camera frames (PNG, or raw RGB8
 * with width/height) + proprio + instruction bytes → `inputs_embeds [1, S, hiddenSize]` through the
 * model's encoder ONNX, with a token kind per prefix token (visual…, proprio, text…).
 */
import { decode as decodePng } from 'fast-png'
import { checkPng } from './png-check.ts'
import { BadRequestError } from '../memory/errors.ts'
import { TokenKind } from '../memory/types.ts'
import type { HostTensor } from '../gpu/feeds.ts'
import type { CameraSpec, ModelManifest } from '../gpu/manifest.ts'
import type { ModelRuntime } from '../gpu/session.ts'
import type { EncodedPrefix } from './adapter.ts'

/** A camera frame as a client sends it: PNG bytes, or raw RGB8 `{width, height, data [h, w, 3]}`. */
export type FrameInput = Uint8Array | { width: number; height: number; data: Uint8Array }

/** The encoder's manifest as a runtime manifest (id `<model>/encoder`). */
export function encoderManifest(m: ModelManifest): ModelManifest {
  const e = m.encoder!
  return { ...m, id: `${m.id}/encoder`, file: e.file, sha256: e.sha256, inputs: e.inputs, outputs: e.outputs }
}

/**
 * Decodes one frame to RGB8 `[height, width, 3]` and checks its size against the camera.
 * @throws BadRequestError (`invalid_image`) for undecodable PNG, a size or channel mismatch
 */
export function frameRgb(frame: unknown, camera: CameraSpec): Uint8Array {
  let width: number, height: number, data: Uint8Array, channels = 3
  if (frame instanceof Uint8Array) {
    // Check the size in the IHDR chunk before inflating: a small PNG can declare a huge image.
    const declared = pngSize(frame)
    if (!declared)
      throw new BadRequestError(`camera '${camera.name}': not a PNG (no signature and IHDR)`, { camera: camera.name }, 'invalid_image')
    if (declared.width !== camera.width || declared.height !== camera.height)
      throw new BadRequestError(`camera '${camera.name}' must be ${camera.width}×${camera.height} px, got ${declared.width}×${declared.height}`, { camera: camera.name }, 'invalid_image')
    try {
      // framing, CRCs and a bounded inflate first: fast-png would inflate a bomb whole
      checkPng(frame, camera.height * (1 + camera.width * 8) + 8 * camera.height)
    } catch (e) {
      throw new BadRequestError(`camera '${camera.name}': not a valid PNG (${(e as Error).message})`, { camera: camera.name }, 'invalid_image')
    }
    try {
      const png = decodePng(frame)
      if (png.depth !== 8) throw new Error(`bit depth ${png.depth}`)
      ;({ width, height } = png)
      channels = png.channels
      data = png.data as Uint8Array
    } catch (e) {
      throw new BadRequestError(`camera '${camera.name}': not a decodable 8-bit PNG (${(e as Error).message})`, { camera: camera.name }, 'invalid_image')
    }
  } else if (frame && typeof frame === 'object' && (frame as { data?: unknown }).data instanceof Uint8Array) {
    ;({ width, height, data } = frame as { width: number; height: number; data: Uint8Array })
    if (data.length !== width * height * 3)
      throw new BadRequestError(`camera '${camera.name}': raw RGB8 needs ${width}×${height}×3 bytes, got ${data.length}`, { camera: camera.name }, 'invalid_image')
  } else {
    throw new BadRequestError(`camera '${camera.name}': expected PNG bytes or {width, height, data}`, { camera: camera.name }, 'invalid_image')
  }
  if (width !== camera.width || height !== camera.height)
    throw new BadRequestError(`camera '${camera.name}' must be ${camera.width}×${camera.height} px, got ${width}×${height}`, { camera: camera.name }, 'invalid_image')
  if (channels === 3) return data
  if (channels !== 4) throw new BadRequestError(`camera '${camera.name}': expected RGB or RGBA, got ${channels} channels`, { camera: camera.name }, 'invalid_image')
  const rgb = new Uint8Array(width * height * 3)
  for (let i = 0, j = 0; i < data.length; i += 4, j += 3) (rgb[j] = data[i]), (rgb[j + 1] = data[i + 1]), (rgb[j + 2] = data[i + 2])
  return rgb
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]

/** Width and height (px) a PNG's IHDR declares, or null when the bytes do not start like a PNG. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } | null {
  if (bytes.length < 24 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) return null
  if (String.fromCharCode(bytes[12], bytes[13], bytes[14], bytes[15]) !== 'IHDR') return null
  const view = new DataView(bytes.buffer, bytes.byteOffset, 24)
  return { width: view.getUint32(16), height: view.getUint32(20) }
}

/** Largest |proprio| value accepted (the robot's proprio is in m, m/s and {0, 1}). */
export const MAX_PROPRIO_ABS = 1e4

/**
 * Refuses observation fields an adapter does not read (a client sending `image` to a text model,
 * or `proprio` to a GUI model, has a bug worth hearing about).
 * @throws BadRequestError (`invalid_observation`) naming the fields
 */
export function onlyFields(observation: Record<string, unknown>, allowed: readonly string[], model: string): void {
  const extra = Object.keys(observation).filter((k) => observation[k] !== undefined && !allowed.includes(k))
  if (extra.length)
    throw new BadRequestError(`model '${model}' does not read observation field(s) ${extra.join(', ')} (it reads ${allowed.join(', ')})`, { fields: extra }, 'invalid_observation')
}

/**
 * Encodes one observation into the decoder's prefix.
 * @param frames one frame per manifest camera, in manifest order
 * @param proprio `[proprioSize]` (robot models), finite
 * @param instruction UTF-8 text, at most `instructionMaxBytes` bytes, at least 1
 * @throws BadRequestError naming what is wrong
 */
export async function encodePrefix(
  encoder: ModelRuntime,
  m: ModelManifest,
  frames: unknown[],
  proprio: unknown,
  instruction: unknown,
): Promise<EncodedPrefix> {
  const e = m.encoder!
  if (frames.length !== e.cameras.length)
    throw new BadRequestError(`model '${m.id}' reads ${e.cameras.length} camera frame(s) (${e.cameras.map((c) => c.name)}), got ${frames.length}`, {}, 'invalid_observation')
  if (typeof instruction !== 'string' || instruction.length === 0)
    throw new BadRequestError('observation.instruction must be a non-empty string', {}, 'invalid_observation')
  const bytes = new TextEncoder().encode(instruction)
  if (bytes.length > e.instructionMaxBytes)
    throw new BadRequestError(`instruction has ${bytes.length} bytes, the model reads at most ${e.instructionMaxBytes}`, {}, 'invalid_observation')
  const feeds: Record<string, HostTensor> = {}
  e.cameras.forEach((camera, i) => {
    feeds[camera.input] = { dtype: 'uint8', dims: [1, camera.height, camera.width, 3], data: frameRgb(frames[i], camera) }
  })
  if (e.proprioSize > 0) {
    if (!Array.isArray(proprio) || proprio.length !== e.proprioSize || !proprio.every((x) => typeof x === 'number' && Math.abs(x) <= MAX_PROPRIO_ABS))
      throw new BadRequestError(`observation.proprio must be ${e.proprioSize} finite numbers within ±${MAX_PROPRIO_ABS}`, {}, 'invalid_observation')
    feeds.proprio = { dtype: 'float32', dims: [1, e.proprioSize], data: Float32Array.from(proprio as number[]) }
  }
  feeds.instruction = { dtype: 'int64', dims: [1, bytes.length], data: BigInt64Array.from(bytes, BigInt) }
  const out = await encoder.run(feeds)
  const embeds = out.inputs_embeds
  const tokens = embeds.dims[1]
  const kinds = new Uint8Array(tokens).fill(TokenKind.text)
  let at = 0
  for (const camera of e.cameras) kinds.fill(TokenKind.visual, at, (at += camera.visualTokens))
  if (e.proprioSize > 0) kinds[at++] = TokenKind.proprio
  return { tokens, inputsEmbeds: embeds.data, kinds }
}
