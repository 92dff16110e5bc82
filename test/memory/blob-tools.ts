/**
 * @module Test tools that take a memory blob apart and put it back together from the documented
 * layout (magic · u16 version · u32 header length · header · pad to 8 · payload · CRC-32), with the
 * reference CRC, so tests can craft blobs whose checksum is right but whose content is wrong.
 */
import { Packr, Unpackr } from 'msgpackr'
import { referenceCrc32 } from './reference.ts'

const align8 = (n: number): number => Math.ceil(n / 8) * 8

/** The parts of an (unsigned) version-1 blob. */
export interface BlobParts {
  version: number
  header: Record<string, any>
  headerBytes: Uint8Array
  payload: Uint8Array
}

/** Split a blob into its parts (no checks beyond the layout). */
export function splitBlob(blob: Uint8Array): BlobParts {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength)
  const headerLength = view.getUint32(6, true)
  const headerBytes = blob.slice(10, 10 + headerLength)
  const payloadOffset = align8(10 + headerLength)
  return {
    version: view.getUint16(4, true),
    header: new Unpackr({ useRecords: false, mapsAsObjects: true }).unpack(headerBytes),
    headerBytes,
    payload: blob.slice(payloadOffset, blob.byteLength - 4),
  }
}

/** Assemble a blob from a header (packed here, or given as bytes) and a payload, with a valid CRC. */
export function joinBlob(
  header: Record<string, any> | Uint8Array,
  payload: Uint8Array,
  version = 1,
): Uint8Array {
  const headerBytes =
    header instanceof Uint8Array ? header : new Packr({ useRecords: false }).pack(header)
  const payloadOffset = align8(10 + headerBytes.byteLength)
  const blob = new Uint8Array(payloadOffset + payload.byteLength + 4)
  const view = new DataView(blob.buffer)
  blob.set(new TextEncoder().encode('SKVM'), 0)
  view.setUint16(4, version, true)
  view.setUint32(6, headerBytes.byteLength, true)
  blob.set(headerBytes, 10)
  blob.set(payload, payloadOffset)
  view.setUint32(blob.byteLength - 4, referenceCrc32(blob.subarray(0, blob.byteLength - 4)), true)
  return blob
}

/** Re-assemble a blob after `edit` changes its header and/or payload (CRC recomputed). */
export function editBlob(blob: Uint8Array, edit: (parts: BlobParts) => void): Uint8Array {
  const parts = splitBlob(blob)
  edit(parts)
  return joinBlob(parts.header, parts.payload, parts.version)
}

/** A copy of `blob` placed at `offset` inside a larger buffer (a view with that byteOffset). */
export function atOffset(blob: Uint8Array, offset: number): Uint8Array {
  const big = new Uint8Array(offset + blob.byteLength + 5)
  big.set(blob, offset)
  return big.subarray(offset, offset + blob.byteLength)
}
