/**
 * @module Per-token metadata of one layer (positions, frames, kinds, each `[kvHeads, tokens]`) as
 * run-length coded bytes: the `layers.{l}.meta` tensor of format version 2 (`codec.ts`). A carried
 * cache is mostly runs (a frame's prefix is consecutive positions of one frame, a few kinds), so
 * 9 bytes per token and head become a few bytes per run.
 *
 * Layout: empty when `tokens` is 0, or when the layer's metadata equals the previous layer's (a
 * carried cache keeps the same rows in every layer, except under per-head selection). Otherwise,
 * head after head (h = 0 … kvHeads − 1), a varint 1 when the head's metadata equals head h − 1's
 * (nothing follows for it), else 0 and three columns of runs, each column's run lengths summing to
 * `tokens`:
 * 1. positions: runs of consecutive positions, `gap · count`; the run starts at
 *    `previous end + 1 + gap` (the first at `gap`) and holds `count` positions. Strictly increasing
 *    by construction.
 * 2. frames: runs of one frame, `zigzag(frame − previous run's frame) · count` (the first from 0).
 * 3. kinds: runs of one kind code, `kind · count`.
 * Numbers are unsigned LEB128 varints (7 bits a byte, low first, ≤ 5 bytes, < 2^32); zigzag maps
 * d ≥ 0 to 2d and d < 0 to −2d − 1. One encoding per metadata: repeats always written as repeats,
 * minimal varints, counts ≥ 1, runs maximal (a later position run has gap ≥ 1, a later frame run a
 * non-zero delta, a later kind run another kind); the decoder refuses anything else, and trailing
 * bytes.
 */
import { MemoryCodecError } from './errors.ts'
import { isTokenKindCode } from './validate.ts'

/** Largest value a metadata varint holds (zigzag deltas of int32 frames need 32 bits). */
const MAX_VARINT = 0xffffffff
/** Largest position or frame (int32). */
const MAX_INT32 = 0x7fffffff

/** A growable byte buffer for the encoder; `reset()` reuses it for the next memory. */
export class ByteWriter {
  bytes = new Uint8Array(256)
  length = 0
  /** Empty it, keeping its buffer. */
  reset(): void {
    this.length = 0
  }
  varint(value: number): void {
    if (this.length + 5 > this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2)
      grown.set(this.bytes)
      this.bytes = grown
    }
    while (value >= 0x80) {
      this.bytes[this.length++] = (value & 0x7f) | 0x80
      value = Math.floor(value / 128)
    }
    this.bytes[this.length++] = value
  }
}

const zigzag = (delta: number): number => (delta >= 0 ? 2 * delta : -2 * delta - 1)

/** The decoded metadata of one layer, each `[kvHeads, tokens]`. */
export interface LayerMeta {
  positions: Int32Array
  frames: Int32Array
  kinds: Uint8Array
}

/** True when rows `[a, a + n)` and `[b, b + n)` hold the same metadata. */
function sameRows(meta: LayerMeta, other: LayerMeta, a: number, b: number, n: number): boolean {
  for (let i = 0; i < n; i++) {
    if (meta.positions[a + i] !== other.positions[b + i]) return false
    if (meta.frames[a + i] !== other.frames[b + i]) return false
    if (meta.kinds[a + i] !== other.kinds[b + i]) return false
  }
  return true
}

/**
 * Run-length code one layer's metadata (layout in the module note).
 * @param meta positions Int32Array `[kvHeads, tokens]` (strictly increasing per head, ≥ 0),
 *   frames Int32Array `[kvHeads, tokens]`, kinds Uint8Array `[kvHeads, tokens]`
 * @param previous the previous layer's metadata (same geometry), if any
 * @returns the bytes (a fresh array, exactly as long as the stream)
 * @throws RangeError if positions are not strictly increasing and ≥ 0 within a head
 */
export function encodeLayerMeta(
  meta: LayerMeta,
  kvHeads: number,
  tokens: number,
  previous?: LayerMeta,
): Uint8Array {
  const out = new ByteWriter()
  writeLayerMeta(out, meta, kvHeads, tokens, previous)
  return out.bytes.slice(0, out.length)
}

/**
 * `encodeLayerMeta` appended to `out` (no allocation once `out` has room).
 * @returns the stream's bytes: a view into `out.bytes`, valid until `out` grows or is reset
 * @throws RangeError as `encodeLayerMeta`
 */
export function writeLayerMeta(
  out: ByteWriter,
  meta: LayerMeta,
  kvHeads: number,
  tokens: number,
  previous?: LayerMeta,
): Uint8Array {
  const { positions, frames, kinds } = meta
  const begin = out.length
  const written = () => out.bytes.subarray(begin, out.length)
  if (tokens === 0) return written()
  if (previous && sameRows(meta, previous, 0, 0, kvHeads * tokens)) {
    checkPositions(positions, kvHeads, tokens)
    return written()
  }
  for (let h = 0; h < kvHeads; h++) {
    const from = h * tokens
    const to = from + tokens
    if (h > 0 && sameRows(meta, meta, from - tokens, from, tokens)) {
      out.varint(1)
      continue
    }
    out.varint(0)
    let end = -1
    for (let start = from; start < to; ) {
      let stop = start + 1
      while (stop < to && positions[stop] === positions[stop - 1] + 1) stop++
      const gap = positions[start] - end - 1
      if (gap < 0) throw new RangeError(`positions of head ${h} must increase strictly from 0`)
      out.varint(gap)
      out.varint(stop - start)
      end = positions[stop - 1]
      start = stop
    }
    let frame = 0
    for (let start = from; start < to; ) {
      let stop = start + 1
      while (stop < to && frames[stop] === frames[start]) stop++
      out.varint(zigzag(frames[start] - frame))
      out.varint(stop - start)
      frame = frames[start]
      start = stop
    }
    for (let start = from; start < to; ) {
      let stop = start + 1
      while (stop < to && kinds[stop] === kinds[start]) stop++
      out.varint(kinds[start])
      out.varint(stop - start)
      start = stop
    }
  }
  return written()
}

/** @throws RangeError unless positions increase strictly from ≥ 0 within each head */
function checkPositions(positions: Int32Array, kvHeads: number, tokens: number): void {
  for (let h = 0; h < kvHeads; h++) {
    for (let t = 0, previous = -1; t < tokens; t++) {
      const position = positions[h * tokens + t]
      if (position <= previous)
        throw new RangeError(`positions of head ${h} must increase strictly from 0`)
      previous = position
    }
  }
}

/**
 * Decode and validate one layer's metadata from untrusted bytes. Checks the stream (varints,
 * counts, maximal runs, repeats written as repeats, no trailing bytes) and the memory's
 * invariants on the way: positions < nextPosition (strictly increasing by construction), frames in
 * 1 … seq, kinds valid codes.
 * @param bytes the `layers.{l}.meta` tensor
 * @param layer the layer index, for messages
 * @param previous layer l − 1's decoded metadata (absent for layer 0)
 * @returns positions, frames, kinds `[kvHeads, tokens]`
 * @throws MemoryCodecError: "layers.{l}.meta: …" for a malformed stream; "memory blob breaks an
 *   invariant: layer l head h row r: …" for a position ≥ nextPosition, a frame outside 1 … seq or
 *   an unknown kind code (the messages of `memoryProblem`)
 */
export function decodeLayerMeta(
  bytes: Uint8Array,
  layer: number,
  kvHeads: number,
  tokens: number,
  nextPosition: number,
  seq: number,
  previous?: LayerMeta,
): LayerMeta {
  if (bytes.length === 0 && tokens > 0 && kvHeads > 0) {
    if (!previous)
      throw new MemoryCodecError(
        `layers.${layer}.meta: empty, but there is no previous layer to repeat`,
      )
    return {
      positions: previous.positions.slice(),
      frames: previous.frames.slice(),
      kinds: previous.kinds.slice(),
    }
  }
  const positions = new Int32Array(kvHeads * tokens)
  const frames = new Int32Array(kvHeads * tokens)
  const kinds = new Uint8Array(kvHeads * tokens)
  const meta = { positions, frames, kinds }
  let at = 0
  const malformed = (message: string): never => {
    throw new MemoryCodecError(`layers.${layer}.meta: ${message} (byte ${at})`)
  }
  const broken = (head: number, row: number, message: string): never => {
    throw new MemoryCodecError(
      `memory blob breaks an invariant: layer ${layer} head ${head} row ${row}: ${message}`,
    )
  }
  const varint = (): number => {
    let value = 0
    for (let shift = 0, scale = 1; shift < 35; shift += 7, scale *= 128) {
      if (at >= bytes.length) malformed('ends inside a number')
      const byte = bytes[at++]
      value += (byte & 0x7f) * scale
      if (byte < 0x80) {
        if (byte === 0 && shift > 0) malformed('a number is not minimally encoded')
        if (value > MAX_VARINT) malformed(`a number exceeds ${MAX_VARINT}`)
        return value
      }
    }
    return malformed('a number is longer than 5 bytes')
  }
  const count = (head: number, row: number, column: string): number => {
    const n = varint()
    if (n < 1) malformed(`head ${head}: a ${column} run of 0 rows`)
    if (n > tokens - row) malformed(`head ${head}: ${column} runs exceed ${tokens} rows`)
    return n
  }
  for (let h = 0; h < kvHeads && tokens > 0; h++) {
    const base = h * tokens
    const repeat = varint()
    if (repeat > 1 || (repeat === 1 && h === 0)) malformed(`head ${h}: repeat marker ${repeat}`)
    if (repeat === 1) {
      positions.copyWithin(base, base - tokens, base)
      frames.copyWithin(base, base - tokens, base)
      kinds.copyWithin(base, base - tokens, base)
      continue
    }
    for (let row = 0, end = -1; row < tokens; ) {
      const gap = varint()
      if (row > 0 && gap === 0) malformed(`head ${h}: position runs are not maximal`)
      const n = count(h, row, 'position')
      const start = end + 1 + gap
      const last = start + n - 1
      if (last > MAX_INT32) malformed(`head ${h}: position ${last} exceeds int32`)
      if (last >= nextPosition) {
        const bad = Math.max(start, nextPosition)
        broken(h, row + bad - start, `position ${bad} ≥ nextPosition ${nextPosition}`)
      }
      for (let i = 0; i < n; i++) positions[base + row + i] = start + i
      end = last
      row += n
    }
    for (let row = 0, frame = 0; row < tokens; ) {
      const code = varint()
      if (row > 0 && code === 0) malformed(`head ${h}: frame runs are not maximal`)
      frame += code % 2 === 0 ? code / 2 : -(code + 1) / 2
      const n = count(h, row, 'frame')
      if (frame > MAX_INT32) malformed(`head ${h}: frame ${frame} exceeds int32`)
      if (frame < 1 || frame > seq) broken(h, row, `frame ${frame} not in 1…${seq}`)
      frames.fill(frame, base + row, base + row + n)
      row += n
    }
    for (let row = 0, last = -1; row < tokens; ) {
      const kind = varint()
      if (kind === last) malformed(`head ${h}: kind runs are not maximal`)
      if (!isTokenKindCode(kind)) broken(h, row, `unknown token kind ${kind}`)
      const n = count(h, row, 'kind')
      kinds.fill(kind, base + row, base + row + n)
      last = kind
      row += n
    }
    if (h > 0 && sameRows(meta, meta, base - tokens, base, tokens))
      malformed(`head ${h} repeats head ${h - 1} without the repeat marker`)
  }
  if (at !== bytes.length) malformed(`${bytes.length - at} trailing bytes`)
  if (previous && tokens > 0 && sameRows(meta, previous, 0, 0, kvHeads * tokens))
    malformed('repeats the previous layer without being empty')
  return meta
}
