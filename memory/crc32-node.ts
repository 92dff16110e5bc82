/**
 * @module Node only (never imported by the Worker): installs `@node-rs/crc32` — a napi-rs binding
 * of the `crc32fast` crate (PCLMULQDQ / ARMv8 CRC instructions), a dependency whose prebuilt
 * per-platform binaries come from npm as optional packages without install scripts — as the
 * process's CRC-32 (`memory/crc32.ts`). Measured on this machine on a 3.5 MB memory blob:
 * 13.4 GB/s against 5.0 GB/s for Node's `zlib.crc32` and 9–13 GB/s for a copy of the same bytes.
 */
import { createRequire } from 'node:module'
import { crc32Implementation, useCrc32 } from './crc32.ts'

/**
 * Installs `@node-rs/crc32` when its binary loads on this platform (checked against `node:zlib`
 * by `useCrc32`). Entry points call it once at start-up and report the result (`npm run bench`
 * records it, the GPU host logs it).
 * @returns the implementation now in use, and why `node:zlib` stayed when it did (no prebuilt
 *   binary for this platform, or a bundle that left `node_modules` behind)
 */
export function useNativeCrc32(): { implementation: string; reason?: string } {
  try {
    const native = createRequire(import.meta.url)('@node-rs/crc32') as { crc32(input: Uint8Array, initial?: number): number }
    useCrc32((bytes, initial) => native.crc32(bytes, initial), '@node-rs/crc32')
    return { implementation: crc32Implementation() }
  } catch (e) {
    return { implementation: crc32Implementation(), reason: String((e as Error)?.message ?? e).split('\n')[0] }
  }
}
