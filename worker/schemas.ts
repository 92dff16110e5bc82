/**
 * @module Request schemas (zod via @hono/zod-openapi, so the OpenAPI document comes from the same
 * definitions) and a `parse` that turns zod issues into a 400 problem naming the field.
 */
import { z } from '@hono/zod-openapi'
import { BadRequestError } from '../memory/errors.ts'

const scalar = z.union([z.number(), z.string(), z.boolean()])

/** `POST /v1/sessions` body. */
export const CreateSession = z
  .object({
    model: z.string().min(1).max(64).default('tiny-gqa'),
    policy: z
      .object({ name: z.string().min(1).max(32), params: z.record(z.string(), scalar).default({}) })
      .strict()
      .default({ name: 'full', params: {} }),
    memoryDtype: z.enum(['float32', 'float16', 'kivi']).default('float32'),
    /** KIVI storage options (memoryDtype 'kivi'): bits 2|4, groupSize G, residualTokens R, tail
     * ('residual' | 'quantized': whether a partly filled key block stays unquantized), per-layer bits. */
    kivi: z
      .object({
        bits: z.union([z.literal(2), z.literal(4)]).optional(),
        groupSize: z.number().int().min(1).max(1024).optional(),
        residualTokens: z.number().int().min(0).max(65536).optional(),
        tail: z.enum(['residual', 'quantized']).optional(),
        layerBits: z.array(z.union([z.literal(2), z.literal(4)])).max(256).optional(),
      })
      .strict()
      .optional(),
    /** Idle TTL (s): the session expires after this long without a request (≤ the deployment's). */
    idleTtlSeconds: z.number().int().min(1).max(31_536_000).optional(),
    /** Keep the observations (frames) of the last N steps for the inspector (≤ MAX_RETAINED_FRAMES);
     * default 0: nothing of an observation is stored beyond its step. */
    retainFrames: z.number().int().min(0).max(1024).optional(),
    /** Where the steps run: in the Worker (wasm) or on a GPU host (`gpu`; README "GPU hosts"). */
    backend: z.enum(['wasm', 'gpu']).optional(),
    /** The step layout (`StepLayout` in worker/engine.ts): `fixed` pads the past to its full size
     * with masked slots, so every step costs the same from step 1 (bounded policies, wasm only). */
    layout: z.enum(['dynamic', 'fixed']).optional(),
  })
  .strict()
  .openapi('CreateSession')

function fromBase64(text: string): Uint8Array {
  const bin = atob(text)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

/** Bytes: a msgpack `bin` (Uint8Array) or, in JSON, a base64 string. */
const Bytes = z.union([
  z.instanceof(Uint8Array).openapi({ type: 'string', format: 'binary', description: 'msgpack bin' }),
  z.base64().transform(fromBase64).openapi({ description: 'base64 (JSON bodies)' }),
])

/** A camera frame: PNG bytes, or raw RGB8 with its size (`data` = height × width × 3 bytes). */
const Frame = z.union([
  Bytes,
  z.object({ width: z.number().int().min(1).max(4096), height: z.number().int().min(1).max(4096), data: Bytes }).strict(),
])

/** A step's observation. The plain decoder reads `text` or `tokens`; GUI models `image` (PNG) +
 * `instruction`; robot models `images` (one frame per camera) + `proprio` + `instruction`. */
export const Observation = z
  .object({
    text: z.string().max(1 << 20).optional(),
    tokens: z.array(z.number().int()).max(1 << 20).optional(),
    image: Frame.optional(),
    images: z.array(Frame).max(16).optional(),
    proprio: z.array(z.number()).max(1024).optional(),
    instruction: z.string().max(4096).optional(),
  })
  .strict()
  .openapi('Observation')

/** `POST /v1/sessions/:id/steps` body. */
export const StepRequestSchema = z
  .object({
    seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    observation: Observation,
    options: z
      .object({
        returnLogits: z.boolean().optional(),
        observationWindow: z.number().int().min(1).max(4096).optional(),
        pin: z.boolean().optional(),
        pinSpans: z.array(z.tuple([z.number().int().min(0), z.number().int().min(1)])).max(64).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .openapi('StepRequest')

/**
 * Validates `value` against `schema`.
 * @throws BadRequestError (`invalid_request`) listing each failing field path and message
 */
export function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const proto = protoKeyPath(value)
  if (proto !== null)
    throw new BadRequestError(`invalid request: ${proto || '(body)'}: the key '__proto__' is not allowed`, { errors: [{ path: proto || '(body)', message: "the key '__proto__' is not allowed" }] }, 'invalid_request')
  const r = schema.safeParse(value)
  if (r.success) return r.data
  const errors = r.error.issues.slice(0, 20).map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }))
  throw new BadRequestError(
    `invalid request: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`,
    { errors },
    'invalid_request',
  )
}

/**
 * The path of the first own `__proto__` key in a JSON body's plain objects and arrays (depth ≤ 64),
 * or null. zod's `z.record` silently drops such a key (so `params: {"__proto__": {...}}` would
 * parse as `{}` and a policy would fall back to its defaults); a body that has one is refused.
 */
function protoKeyPath(value: unknown, path = '', depth = 0): string | null {
  if (value === null || typeof value !== 'object' || depth > 64 || ArrayBuffer.isView(value)) return null
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i]
      if (v !== null && typeof v === 'object') {
        const hit = protoKeyPath(v, path ? `${path}.${i}` : String(i), depth + 1)
        if (hit !== null) return hit
      }
    }
    return null
  }
  if (Object.prototype.hasOwnProperty.call(value, '__proto__')) return path ? `${path}.__proto__` : '__proto__'
  for (const [k, v] of Object.entries(value)) {
    if (v !== null && typeof v === 'object') {
      const hit = protoKeyPath(v, path ? `${path}.${k}` : k, depth + 1)
      if (hit !== null) return hit
    }
  }
  return null
}
