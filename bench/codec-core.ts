/**
 * @module The codec bench, runtime-agnostic (Node and workerd run this same code): SKVM envelope
 * encode and decode throughput of one memory under each storage width, CRC-32 (`memory/crc32.ts`,
 * native `node:zlib` where the runtime has it, which the envelope uses) against a plain-JS table
 * CRC, HMAC-SHA256 signing and verification (`memory/signing.ts`, WebCrypto) reported apart, and
 * `new Uint8Array(src)` (allocate and copy the same bytes) as the yardstick.
 */
import { decodeMemory, encodeMemory } from '../memory/codec.ts'
import { crc32 } from '../memory/crc32.ts'
import { signMemory, tenantMemoryKey, verifyMemory } from '../memory/signing.ts'
import { roundTrip, type StorageOptions } from '../memory/storage.ts'

/** One measured operation: `bytes` processed per call, `mbPerS` = bytes × calls / 1e6 / seconds. */
export interface CodecRow {
  op: string
  storage: string
  bytes: number
  calls: number
  mbPerS: number
}

const STORAGES: [string, StorageOptions][] = [
  ['float32', { dtype: 'float32' }],
  ['float16', { dtype: 'float16' }],
  ['kivi4', { dtype: 'kivi', kivi: { bits: 4 } }],
]

/**
 * Throughput of `fn` over `bytes` per call: a few unmeasured calls, then calls until `minMs` has
 * passed (at least 3), timed as one batch (workerd's clock advances in whole ms).
 * @returns MB/s (1 MB = 10⁶ bytes) and the call count
 */
export function throughput(bytes: number, fn: () => unknown, minMs: number, now: () => number = () => performance.now()) {
  for (let i = 0; i < 3; i++) fn()
  let calls = 0
  const start = now()
  let elapsed = 0
  while (calls < 3 || elapsed < minMs) {
    fn()
    calls++
    elapsed = now() - start
  }
  return { calls, mbPerS: (bytes * calls) / 1e6 / (elapsed / 1000) }
}

/** `throughput` for an async operation (each call awaited). */
export async function throughputAsync(bytes: number, fn: () => Promise<unknown>, minMs: number, now: () => number = () => performance.now()) {
  for (let i = 0; i < 3; i++) await fn()
  let calls = 0
  const start = now()
  let elapsed = 0
  while (calls < 3 || elapsed < minMs) {
    await fn()
    calls++
    elapsed = now() - start
  }
  return { calls, mbPerS: (bytes * calls) / 1e6 / (elapsed / 1000) }
}

/** A fixed bench-only secret (≥ 32 bytes) for the HMAC rows; never a deployment's. */
const BENCH_SECRET = 'stepkv-bench-hmac-secret-not-for-use-0000'

const CRC_TABLE = (() => {
  const t = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c
  }
  return t
})()

/** CRC-32 in plain JS (one table lookup per byte): the comparison for the native one.
 * @returns unsigned 32-bit checksum, equal to `crc32(bytes)` */
export function crc32Js(bytes: Uint8Array): number {
  let c = -1
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

/** Rounds per measurement: each operation is timed once per round, rounds interleave the
 * operations (so a change in machine load hits all of them alike), and the median round counts. */
export const CODEC_ROUNDS = 5

/**
 * Measures the codec on the memory in `blob` (an SKVM blob, e.g. the trained GUI model's full
 * float32 cache at T = 16): per storage width, `encode` (`encodeMemory` of the memory the Durable
 * Object holds, i.e. after `roundTrip`), `decode` (`decodeMemory` as a Durable Object loads its own
 * copy, `trusted`: the CRC and every invariant but the K/V value scan) and `decode-scan` (as an
 * import: the NaN/±Inf scan of every value too); on the float32 blob, `copy`
 * (`new Uint8Array(src)`), `crc32` (`memory/crc32.ts`: native where available)
 * and `crc32-js`; `hmac-sign` (`signMemory`: re-frame + HMAC-SHA256) and `hmac-verify`
 * (`verifyMemory`, before a decode). Each operation runs `CODEC_ROUNDS` interleaved rounds of
 * ≥ minMs / rounds.
 * @param blob an SKVM blob (any storage); decoded once to get the memory
 * @param minMs time per operation, all rounds together (ms)
 * @returns one row per operation and storage (median round); `bytes` = that storage's blob size
 * @throws MemoryCodecError if `blob` does not decode
 */
export async function measureCodec(blob: Uint8Array, minMs = 300): Promise<CodecRow[]> {
  const { memory, policy } = decodeMemory(blob)
  const key = await tenantMemoryKey(BENCH_SECRET, 'bench')
  const ops: { op: string; storage: string; bytes: number; fn: () => unknown; async?: boolean }[] = []
  for (const [name, storage] of STORAGES) {
    const kept = roundTrip(memory, storage)
    const encoded = encodeMemory(kept, { policy, ...storage })
    const n = encoded.byteLength
    ops.push({ op: 'encode', storage: name, bytes: n, fn: () => encodeMemory(kept, { policy, ...storage }) })
    ops.push({ op: 'decode', storage: name, bytes: n, fn: () => decodeMemory(encoded, undefined, { trusted: true }) })
    ops.push({ op: 'decode-scan', storage: name, bytes: n, fn: () => decodeMemory(encoded) })
    if (name === 'float32') {
      ops.push({ op: 'copy', storage: name, bytes: n, fn: () => new Uint8Array(encoded) })
      ops.push({ op: 'crc32', storage: name, bytes: n, fn: () => crc32(encoded) })
      ops.push({ op: 'crc32-js', storage: name, bytes: n, fn: () => crc32Js(encoded) })
      const signed = await signMemory(encoded, key)
      ops.push({ op: 'hmac-sign', storage: name, bytes: n, fn: () => signMemory(encoded, key), async: true })
      ops.push({ op: 'hmac-verify', storage: name, bytes: signed.byteLength, fn: () => verifyMemory(signed, key, 'bench'), async: true })
    }
  }
  const rounds = ops.map(() => [] as { calls: number; mbPerS: number }[])
  for (let r = 0; r < CODEC_ROUNDS; r++)
    for (const [i, o] of ops.entries())
      rounds[i].push(o.async ? await throughputAsync(o.bytes, o.fn as () => Promise<unknown>, minMs / CODEC_ROUNDS) : throughput(o.bytes, o.fn, minMs / CODEC_ROUNDS))
  return ops.map((o, i) => {
    const sorted = [...rounds[i]].sort((a, b) => a.mbPerS - b.mbPerS)
    return { op: o.op, storage: o.storage, bytes: o.bytes, calls: rounds[i].reduce((n, x) => n + x.calls, 0), mbPerS: sorted[sorted.length >> 1].mbPerS }
  })
}
