/**
 * @module Request and reply bodies: JSON or `application/msgpack`, chosen by Content-Type for
 * requests and by Accept for replies. Decoded msgpack holds plain data only (no extension types),
 * and is schema-validated afterwards.
 */
import { Packr } from 'msgpackr'
import { BadRequestError, StepkvError } from '../memory/errors.ts'
import { plainMsgpackProblem } from '../memory/msgpack-scan.ts'

export const MSGPACK = 'application/msgpack'

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' })

/** Encodes a reply object as msgpack (plain maps; Uint8Array → bin). */
export function packReply(value: unknown): Uint8Array {
  return packr.pack(value)
}

/** Bounds of a request body's msgpack (`msgpack-scan.ts`): the deepest valid body (a robot frame
 * in `observation.images[]`) is 4 levels; `tokens` may list 2^20 numbers. */
export const BODY_SCAN_LIMITS = { maxDepth: 16, maxValues: (1 << 20) + 4096, allowBin: true }

/** Decodes msgpack produced by `packReply` or a trusted peer (no pre-scan). */
export function unpackBody(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes)
  } catch (e) {
    throw new BadRequestError(`malformed msgpack body: ${(e as Error).message}`, {}, 'malformed_body')
  }
}

/**
 * Decodes an untrusted msgpack request body: a bounded pre-scan first (plain data and bin only, no
 * extension types, depth ≤ 16, ≤ 2^20 + 4096 values), so msgpackr never recurses deeply or builds
 * Map/Set/Date/RegExp/Error objects; `__proto__` keys come out as inert `__proto_` (msgpackr).
 * @throws BadRequestError (`malformed_body`) naming the first problem
 */
export function unpackRequest(bytes: Uint8Array): unknown {
  const problem = plainMsgpackProblem(bytes, BODY_SCAN_LIMITS)
  if (problem) throw new BadRequestError(`malformed msgpack body: ${problem}`, {}, 'malformed_body')
  return unpackBody(bytes)
}

/** Reads a request body as JSON or msgpack, per its Content-Type.
 * @throws StepkvError 415 for another content type, BadRequestError when the body does not parse */
export async function readBody(req: Request): Promise<unknown> {
  const type = (req.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase()
  if (type === MSGPACK || type === 'application/x-msgpack')
    return unpackRequest(new Uint8Array(await req.arrayBuffer()))
  if (type === 'application/json' || type === '') {
    const text = await req.text()
    try {
      return JSON.parse(text)
    } catch (e) {
      throw new BadRequestError(`malformed JSON body: ${(e as Error).message}`, {}, 'malformed_body')
    }
  }
  throw new StepkvError('unsupported_media_type', 415, `unsupported content type '${type}': use application/json or ${MSGPACK}`)
}

/**
 * A body whose every field is optional: no body (or zero bytes) reads as `{}`, anything else as
 * `readBody`. @throws as `readBody`
 */
export async function readOptionalBody(req: Request): Promise<unknown> {
  if (req.headers.get('content-length') === '0' || !req.body) return {}
  const bytes = await req.clone().arrayBuffer()
  return bytes.byteLength === 0 ? {} : readBody(req)
}

/** True when the client asked for msgpack replies. */
export function wantsMsgpack(req: Request): boolean {
  const accept = req.headers.get('accept') ?? ''
  return accept.includes(MSGPACK) || accept.includes('application/x-msgpack')
}
