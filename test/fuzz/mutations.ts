/**
 * @module Mutators for the fuzz suites (fast-check arbitraries), shared by the Node suites
 * (`test/fuzz/*.test.ts`) and the workerd one (`test/workerd/fuzz.test.ts`), so no `node:` imports.
 *
 * - Memory blobs: a valid signed blob's body (every byte before the 32-byte tag) is truncated,
 *   bit-flipped, overwritten; its prelude (magic, version, header length) or header fields are set
 *   to wrong types, huge declared lengths, deep nesting and prototype keys; K/V get NaN/±Inf or
 *   out-of-range values; metadata tensors random integers. Most cases fix the CRC after editing so
 *   they get past it; the harness re-signs them so they get past the HMAC.
 * - Requests: a valid step request gets wrong types, missing and extra (`__proto__`,
 *   `constructor`) fields, NaN, huge arrays and strings, deep nesting, huge declared msgpack lengths,
 *   then is encoded as JSON or msgpack and sometimes truncated or bit-flipped.
 */
import fc from 'fast-check'
import { Packr, Unpackr } from 'msgpackr'
import { crc32 } from '../../memory/crc32.ts'

const packr = new Packr({ useRecords: false })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })
const align8 = (n: number) => Math.ceil(n / 8) * 8

/** An object with own `__proto__`, `constructor` and `prototype` keys (JSON.parse makes them own). */
export const prototypeKeys = (): Record<string, unknown> =>
  JSON.parse('{"__proto__": {"polluted": 1}, "constructor": {"prototype": {"polluted": 2}}, "prototype": {"polluted": 3}}')

/** Nested one-element arrays, `depth` deep, around `inner`. */
export function deepArray(depth: number, inner: unknown = 0): unknown {
  let v: unknown = inner
  for (let i = 0; i < depth; i++) v = [v]
  return v
}

/** Values of the wrong type or size for any field. */
export const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(-1, 0, -0, 0.5, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), Number.MAX_VALUE, NaN, Infinity, -Infinity, null, true, false, '', 'x', [], {}, [1, 2, 3], { a: 1 }),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 40 }),
  fc.constant(0).map(() => 'a'.repeat(70_000)),
  fc.constant(0).map(prototypeKeys),
  fc.integer({ min: 2, max: 200 }).map((d) => deepArray(d)),
  fc.constant(0).map(() => new Uint8Array(7)),
  fc.array(fc.double(), { maxLength: 8 }),
)

/** Keys that must stay inert. */
export const evilKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', 'x')

// ---------------------------------------------------------------- memory blobs

/** A blob body split into its documented parts (no validation). */
interface Parts {
  prelude: Uint8Array
  header: unknown
  payload: Uint8Array
}

function splitBody(body: Uint8Array): Parts | undefined {
  if (body.byteLength < 14) return undefined
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  const headerLength = view.getUint32(6, true)
  const payloadOffset = align8(10 + headerLength)
  if (payloadOffset + 4 > body.byteLength) return undefined
  try {
    const header = unpackr.unpack(body.subarray(10, 10 + headerLength))
    return { prelude: body.slice(0, 10), header, payload: body.slice(payloadOffset, body.byteLength - 4) }
  } catch {
    return undefined
  }
}

/** A body from a prelude, header bytes and payload, with a valid CRC. */
function joinBody(prelude: Uint8Array, headerBytes: Uint8Array, payload: Uint8Array): Uint8Array {
  const offset = align8(10 + headerBytes.byteLength)
  const body = new Uint8Array(offset + payload.byteLength + 4)
  body.set(prelude.subarray(0, 10))
  new DataView(body.buffer).setUint32(6, headerBytes.byteLength, true)
  body.set(headerBytes, 10)
  body.set(payload, offset)
  return fixCrc(body)
}

/** The body with its last 4 bytes set to the CRC-32 of the rest (a copy). */
export function fixCrc(body: Uint8Array): Uint8Array {
  const out = body.slice()
  if (out.byteLength >= 14) new DataView(out.buffer).setUint32(out.byteLength - 4, crc32(out.subarray(0, out.byteLength - 4)), true)
  return out
}

type Json = Record<string, any>

/** Sets (or deletes, value undefined) `path` (dot-separated, numeric parts index arrays) in `root`. */
function setPath(root: Json, path: string[], value: unknown): void {
  let node: any = root
  for (const key of path.slice(0, -1)) {
    if (node === null || typeof node !== 'object') return
    node = node[key]
  }
  if (node === null || typeof node !== 'object') return
  const last = path[path.length - 1]
  if (value === undefined) delete node[last]
  else Object.defineProperty(node, last, { value, enumerable: true, writable: true, configurable: true })
}

const HEADER_PATHS = [
  'seq', 'nextPosition', 'kvHeads', 'headDim', 'layers', 'tokens', 'dtype', 'hmac', 'scores', 'layerIds', 'kivi',
  'model', 'model.id', 'model.sha256', 'policy', 'policy.name', 'policy.params', 'policy.params.recentTokens',
  'tensors', 'tensors.#', 'tensors.#.name', 'tensors.#.dtype', 'tensors.#.dims', 'tensors.#.dims.0', 'tensors.#.dims.1',
  'tensors.#.offset', 'tensors.#.byteLength', 'kivi.bits', 'kivi.groupSize', 'kivi.quantizedTokens', 'kivi.keyBlocks',
]
const HUGE = [2 ** 31, 2 ** 32 - 1, 2 ** 40, 2 ** 53 - 1, 1e300]

/** A header edit: `(header, pick) → void` where pick(n) chooses an index below n. */
type HeaderEdit = { name: string; edit: (header: Json, tensorIndex: number) => void }

const headerEdit: fc.Arbitrary<HeaderEdit> = fc.oneof(
  fc.tuple(fc.constantFrom(...HEADER_PATHS), weirdValue).map(([path, value]) => ({
    name: 'header wrong type',
    edit: (h: Json, t: number) => setPath(h, path.replace('#', String(t)).split('.'), value),
  })),
  fc.constantFrom(...HEADER_PATHS).map((path) => ({
    name: 'header field missing',
    edit: (h: Json, t: number) => setPath(h, path.replace('#', String(t)).split('.'), undefined),
  })),
  fc.tuple(fc.constantFrom('', 'model', 'policy', 'policy.params', 'tensors.#', 'kivi'), evilKey, weirdValue).map(([at, key, value]) => ({
    name: 'header prototype key',
    edit: (h: Json, t: number) => setPath(h, [...(at ? at.replace('#', String(t)).split('.') : []), key], value),
  })),
  fc.tuple(fc.constantFrom('tokens', 'layers', 'kvHeads', 'headDim', 'tensors.#.byteLength', 'tensors.#.offset', 'tensors.#.dims.0', 'tensors.#.dims.2', 'nextPosition', 'seq'), fc.constantFrom(...HUGE)).map(([path, value]) => ({
    name: 'header huge length',
    edit: (h: Json, t: number) => setPath(h, path.replace('#', String(t)).split('.'), value),
  })),
  fc.tuple(fc.constantFrom('tokens', 'seq', 'nextPosition', 'layers', 'tensors.#.dims.1', 'tensors.#.byteLength'), fc.integer({ min: -3, max: 3 })).map(([path, delta]) => ({
    name: 'header off by a few',
    edit: (h: Json, t: number) => {
      const parts = path.replace('#', String(t)).split('.')
      let node: any = h
      for (const k of parts.slice(0, -1)) node = node?.[k]
      if (node && typeof node[parts.at(-1)!] === 'number') node[parts.at(-1)!] += delta
    },
  })),
)

/** One memory-blob case: the mutated body (tag not included) and what was done. */
export interface BlobCase {
  kind: string
  body: Uint8Array
}

/** Mutations of a signed blob's body (`base` = the blob without its last 32 bytes). */
export function blobCase(base: Uint8Array): fc.Arbitrary<BlobCase> {
  const parts = splitBody(base)!
  const header = parts.header as Json
  const tensors = header.tensors as { name: string; dtype: string; offset: number; byteLength: number }[]
  const payloadOffset = align8(10 + new DataView(base.buffer, base.byteOffset).getUint32(6, true))
  const floats = tensors.filter((t) => t.dtype === 'float32' && t.byteLength >= 4)
  const ints = tensors.filter((t) => (t.dtype === 'int32' || t.dtype === 'uint8') && t.byteLength >= 1)
  const pos = fc.integer({ min: 0, max: base.byteLength - 1 })
  const crc = fc.boolean() // whether to recompute the CRC after the edit
  const withCrc = (kind: string, body: Uint8Array, fix: boolean): BlobCase => ({ kind: fix ? `${kind} (CRC fixed)` : kind, body: fix ? fixCrc(body) : body })

  const headerEditCase = fc.tuple(headerEdit, fc.nat({ max: tensors.length - 1 })).map(([e, t]): BlobCase => {
    const h = structuredClone(header)
    e.edit(h, t)
    let headerBytes: Uint8Array
    try {
      headerBytes = packr.pack(h)
    } catch {
      headerBytes = packr.pack(header)
    }
    return { kind: e.name, body: joinBody(parts.prelude, new Uint8Array(headerBytes), parts.payload) }
  })

  return fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: base.byteLength - 1 }), crc).map(([n, fix]) => withCrc('truncated', base.slice(0, n), fix)),
    fc.tuple(fc.array(fc.tuple(pos, fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 }), crc).map(([flips, fix]) => {
      const body = base.slice()
      for (const [at, bit] of flips) body[at] ^= 1 << bit
      return withCrc('bit flips', body, fix)
    }),
    fc.tuple(pos, fc.uint8Array({ minLength: 1, maxLength: 16 }), crc).map(([at, bytes, fix]) => {
      const body = base.slice()
      body.set(bytes.subarray(0, body.byteLength - at), at)
      return withCrc('bytes overwritten', body, fix)
    }),
    fc.tuple(fc.constantFrom(0, 1, 7, 0x7fffffff, 0xffffffff, -1, 1, 8), crc).map(([value, fix]) => {
      const body = base.slice()
      const view = new DataView(body.buffer)
      const declared = view.getUint32(6, true)
      view.setUint32(6, value === -1 ? declared - 1 : value === 1 ? declared + 1 : value === 8 ? declared + 8 : value, true)
      return withCrc('header length field', body, fix)
    }),
    fc.tuple(fc.constantFrom(0, 2, 0xffff), fc.boolean()).map(([version, magic]) => {
      const body = base.slice()
      if (magic) body[3] = 0x4e // "SKVN"
      else new DataView(body.buffer).setUint16(4, version, true)
      return withCrc(magic ? 'magic' : 'version', body, true)
    }),
    { weight: 5, arbitrary: headerEditCase },
    fc.constantFrom(9, 100, 100_000).map((depth) => {
      const nested = new Uint8Array(depth + 1).fill(0x91)
      nested[depth] = 0xc0
      return { kind: 'header deep nesting', body: joinBody(parts.prelude, nested, parts.payload) }
    }),
    fc.constantFrom(0xc7, 0xd4, 0xd6, 0xc4, 0xc1).map((type) => {
      // An extension / bin / never-used type as the header's first value (msgpackr would build a Date, …).
      const bytes = new Uint8Array([type, 4, 0xff, 0, 0, 0, 0])
      return { kind: 'header extension type', body: joinBody(parts.prelude, bytes, parts.payload) }
    }),
    ...(floats.length
      ? [
          fc.tuple(fc.constantFrom(...floats), fc.nat(), fc.constantFrom(NaN, Infinity, -Infinity, 3e38, -2e5, 1e5 + 1, 0.001, -0.5)).map(([t, i, value]) => {
            const body = base.slice()
            const count = t.byteLength / 4
            new DataView(body.buffer).setFloat32(payloadOffset + t.offset + 4 * (i % count), value, true)
            const valid = Number.isFinite(value) && Math.abs(value) <= 1e5
            return { kind: valid ? 'tensor value changed (valid)' : 'NaN/Inf/out-of-range tensor', body: fixCrc(body) }
          }),
        ]
      : []),
    ...(ints.length
      ? [
          fc.tuple(fc.constantFrom(...ints), fc.nat(), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })).map(([t, i, value]) => {
            const body = base.slice()
            const view = new DataView(body.buffer)
            if (t.dtype === 'int32') view.setInt32(payloadOffset + t.offset + 4 * (i % (t.byteLength / 4)), value, true)
            else body[payloadOffset + t.offset + (i % t.byteLength)] = value & 0xff
            return { kind: 'metadata tensor value', body: fixCrc(body) }
          }),
        ]
      : []),
  )
}

// ---------------------------------------------------------------- requests

/** One request case: body bytes, the Content-Type sent, what was done. */
export interface RequestCase {
  kind: string
  contentType: string
  body: Uint8Array
}

const encoder = new TextEncoder()

/** Valid step bodies for the plain decoder (`tiny-gqa`), without `seq` (the harness sets it). */
export const validObservation = fc.oneof(
  fc.string({ minLength: 1, maxLength: 60 }).map((text) => ({ observation: { text } })),
  fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 40 }).map((tokens) => ({ observation: { tokens } })),
  fc.tuple(fc.string({ minLength: 4, maxLength: 30 }), fc.boolean(), fc.integer({ min: 1, max: 16 })).map(([text, returnLogits, observationWindow]) => ({
    observation: { text },
    options: { returnLogits, observationWindow, pin: !returnLogits, pinSpans: [[0, 2]] },
  })),
)

const REQUEST_PATHS = ['seq', 'observation', 'observation.text', 'observation.tokens', 'observation.tokens.0', 'observation.image', 'observation.images', 'observation.proprio', 'observation.instruction', 'options', 'options.returnLogits', 'options.observationWindow', 'options.pin', 'options.pinSpans', 'options.pinSpans.0', 'options.pinSpans.0.1']

type RequestEdit = { name: string; edit: (body: Json) => void }

const requestEdit: fc.Arbitrary<RequestEdit> = fc.oneof(
  fc.constant({ name: 'valid', edit: () => {} }),
  fc.tuple(fc.constantFrom(...REQUEST_PATHS), weirdValue).map(([path, value]) => ({ name: 'wrong type', edit: (b: Json) => setPath(b, path.split('.'), value) })),
  fc.constantFrom('seq', 'observation', 'observation.text', 'observation.tokens', 'options').map((path) => ({ name: 'field missing', edit: (b: Json) => setPath(b, path.split('.'), undefined) })),
  fc.tuple(fc.constantFrom('', 'observation', 'options'), evilKey, weirdValue).map(([at, key, value]) => ({
    name: 'prototype key',
    edit: (b: Json) => setPath(b, [...(at ? at.split('.') : []), key], value),
  })),
  fc.constantFrom(NaN, Infinity, -Infinity, 1e308, -0).map((x) => ({ name: 'NaN/Inf numbers', edit: (b: Json) => setPath(b, ['observation', 'proprio'], [x, 0, 0, 0, 0]) })),
  fc.constantFrom(NaN, Infinity, 256, -1, 0.5).map((x) => ({ name: 'NaN/Inf numbers', edit: (b: Json) => setPath(b, ['observation', 'tokens'], [1, x, 2]) })),
  fc.constantFrom(4097, 70_000, (1 << 20) + 1).map((n) => ({ name: 'huge array', edit: (b: Json) => setPath(b, ['observation', 'tokens'], new Array(n).fill(7)) })),
  fc.constantFrom(5000, 70_000).map((n) => ({ name: 'huge string', edit: (b: Json) => setPath(b, ['observation', 'text'], 'é'.repeat(n)) })),
  fc.constantFrom(50, 900).map((d) => ({ name: 'deep nesting', edit: (b: Json) => setPath(b, ['observation', 'text'], deepArray(d)) })),
)

/** msgpack containers that declare far more than they hold. */
const HUGE_DECLARED = [
  [0xdd, 0xff, 0xff, 0xff, 0xff], // array32 of 2^32 − 1
  [0xdf, 0xff, 0xff, 0xff, 0xff], // map32
  [0xdb, 0xff, 0xff, 0xff, 0xff], // str32
  [0xc6, 0xff, 0xff, 0xff, 0xff], // bin32
  [0xdc, 0xff, 0xff], // array16
]

/** Raw bodies that are not a JSON/msgpack encoding of an object at all. */
const rawBody: fc.Arbitrary<RequestCase> = fc.oneof(
  fc.constantFrom(1000, 200_000).map((depth) => ({ kind: 'deep nesting (raw)', contentType: 'application/json', body: encoder.encode('['.repeat(depth) + ']'.repeat(depth)) })),
  fc.constantFrom(1000, 200_000).map((depth) => ({ kind: 'deep nesting (raw)', contentType: 'application/msgpack', body: new Uint8Array(depth + 1).fill(0x91).fill(0xc0, depth) })),
  fc.constantFrom(...HUGE_DECLARED).map((prefix) => {
    // {seq: 1, observation: <huge declared container>}
    const head = packr.pack({ seq: 1 })
    const map = new Uint8Array([0x82, ...head.subarray(1), ...packr.pack('observation'), ...prefix, 0x00])
    return { kind: 'huge declared length', contentType: 'application/msgpack', body: map }
  }),
  fc.constantFrom(0xd6, 0xc7, 0xd4).map((ext) => ({
    // A timestamp / ext value where the observation should be (msgpackr would build a Date or call an extension).
    kind: 'extension type',
    contentType: 'application/msgpack',
    body: new Uint8Array([0x82, ...packr.pack('seq'), 0x01, ...packr.pack('observation'), ext, 0x01, 0xff, 0, 0, 0, 0]),
  })),
  fc.uint8Array({ maxLength: 64 }).map((body) => ({ kind: 'random bytes', contentType: 'application/msgpack', body })),
  fc.string({ maxLength: 64 }).map((s) => ({ kind: 'random text', contentType: 'application/json', body: encoder.encode(s) })),
)

/**
 * Step request cases for a session whose next seq is `seq`: a valid body edited (or left valid),
 * encoded as JSON or msgpack, then sometimes truncated or bit-flipped; or a raw hostile body.
 */
export function requestCase(seq: number): fc.Arbitrary<RequestCase> {
  const encoded = fc
    .tuple(validObservation, requestEdit, fc.boolean(), fc.constantFrom(seq, seq, seq, seq - 1, seq + 1, 0))
    .map(([valid, e, msgpack, s]): RequestCase => {
      const body: Json = { seq: s, ...structuredClone(valid) }
      e.edit(body)
      const kind = s === seq ? e.name : `${e.name}, seq ${s - seq >= 0 ? '+' : ''}${s - seq}`
      if (msgpack) return { kind, contentType: 'application/msgpack', body: new Uint8Array(packr.pack(body)) }
      return { kind, contentType: 'application/json', body: encoder.encode(JSON.stringify(body) ?? '') }
    })
  const damaged = fc.tuple(encoded, fc.constantFrom('none', 'none', 'none', 'none', 'truncate', 'flip'), fc.nat(), fc.nat({ max: 7 })).map(([c, how, at, bit]) => {
    if (how === 'none' || c.body.byteLength === 0) return c
    const body = c.body.slice()
    if (how === 'truncate') return { ...c, kind: `${c.kind}, truncated`, body: body.subarray(0, at % body.byteLength) }
    body[at % body.byteLength] ^= 1 << bit
    return { ...c, kind: `${c.kind}, bit flip`, body }
  })
  return fc.oneof({ weight: 5, arbitrary: damaged }, { weight: 1, arbitrary: rawBody })
}

// ---------------------------------------------------------------- stage accounting

/** Where a memory import stops, in pipeline order. */
export const MEMORY_STAGES = ['signature', 'prelude', 'crc', 'header', 'model', 'tensors', 'invariants', 'session', 'accepted'] as const
export type MemoryStage = (typeof MEMORY_STAGES)[number]

/**
 * The pipeline stage that refused an import, from the problem's code and detail (or 'accepted').
 * Order: HMAC (Worker) → prelude → CRC → header → model → tensor table and data → invariants →
 * session checks (model id, policy, ±MAX_KV_ABS, bytes).
 */
export function memoryStage(code: string | undefined, detail = ''): MemoryStage {
  if (code === undefined) return 'accepted'
  if (/HMAC-SHA256|too short to be a signed one/.test(detail)) return 'signature'
  if (/CRC32 mismatch/.test(detail)) return 'crc'
  if (code === 'memory_version' || /not a memory blob|header length|too short to be one|runs past the end of the/.test(detail)) return 'prelude'
  if (/memory header|unknown storage dtype|HMAC-signed|not HMAC-signed|ends inside its header/.test(detail)) return 'header'
  if (code === 'model_mismatch' && !/this session runs/.test(detail)) return 'model'
  if (/breaks an invariant/.test(detail)) return 'invariants'
  if (['policy_mismatch', 'memory_out_of_range', 'memory_limit'].includes(code) || /this session runs/.test(detail)) return 'session'
  return 'tensors'
}

/** Where a step request stops: the body (size, media type, decoding), its schema, the step itself. */
export const REQUEST_STAGES = ['body', 'schema', 'step', 'stepped'] as const
export type RequestStage = (typeof REQUEST_STAGES)[number]

/** The stage that refused a step request, from its problem code (or 'stepped' on success). */
export function requestStage(code: string | undefined): RequestStage {
  if (code === undefined) return 'stepped'
  if (['malformed_body', 'payload_too_large', 'unsupported_media_type'].includes(code)) return 'body'
  if (code === 'invalid_request') return 'schema'
  return 'step'
}

/** Counts per stage and the cumulative "reached" counts (inputs that got at least that far). */
export function stageTable<S extends string>(stages: readonly S[], stoppedAt: Map<S, number>): { stage: S; stopped: number; reached: number }[] {
  let remaining = [...stoppedAt.values()].reduce((a, b) => a + b, 0)
  return stages.map((stage) => {
    const row = { stage, stopped: stoppedAt.get(stage) ?? 0, reached: remaining }
    remaining -= row.stopped
    return row
  })
}
