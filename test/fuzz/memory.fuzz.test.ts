/**
 * Fuzz, in Node: mutated memory blobs through the import path the Worker and the Durable Object
 * run (HMAC check, then `checkImport`: decode against the session's model, model id, policy, K/V
 * range, storage round trip, size). Mutated bodies are re-signed (95 %) so they reach the decoder.
 * Every input must end in a 4xx StepkvError or a valid memory — never another exception — and the
 * suite prints how many inputs reached each stage.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeMemory, HMAC_BYTES } from '../../memory/codec.ts'
import { StepkvError } from '../../memory/errors.ts'
import { signMemory, tenantMemoryKey, verifyMemory } from '../../memory/signing.ts'
import { memoryProblem } from '../../memory/validate.ts'
import { checkImport } from '../../worker/import-check.ts'
import { fuzzBases } from './bases.ts'
import { blobCase, MEMORY_STAGES, memoryStage, stageTable, type MemoryStage } from './mutations.ts'

const SECRET = 'fuzz-secret-0123456789abcdef-0123456789abcdef'
const RUNS_PER_BASE = 1200
const LIMIT_BYTES = 64 << 20

describe('memory import fuzz (Node)', () => {
  it(`${RUNS_PER_BASE} mutated blobs per base: 4xx or a valid memory, never a crash`, async () => {
    const key = await tenantMemoryKey(SECRET, 'dev')
    const otherKey = await tenantMemoryKey(SECRET, 'other')
    const stoppedAt = new Map<MemoryStage, number>()
    const kinds = new Map<string, number>()
    let total = 0
    for (const [b, base] of fuzzBases().entries()) {
      const signed = await signMemory(base.blob, key)
      const body = signed.subarray(0, signed.byteLength - HMAC_BYTES)
      const sign = fc.constantFrom<'dev' | 'other' | 'stale'>(...Array(18).fill('dev'), 'other', 'stale')
      await fc.assert(
        fc.asyncProperty(blobCase(body), sign, async (c, how) => {
          const tag =
            how === 'stale'
              ? signed.subarray(signed.byteLength - HMAC_BYTES)
              : new Uint8Array(await crypto.subtle.sign('HMAC', how === 'dev' ? key : otherKey, c.body))
          const bytes = new Uint8Array(c.body.byteLength + HMAC_BYTES)
          bytes.set(c.body)
          bytes.set(tag, c.body.byteLength)
          let stage: MemoryStage
          try {
            await verifyMemory(bytes, key, 'dev')
            const { kept, stored } = checkImport(bytes, base.manifest, base.config, LIMIT_BYTES)
            // Accepted: what would be stored is a valid memory that decodes back to `kept`.
            expect(memoryProblem(kept)).toBeUndefined()
            expect(decodeMemory(stored).memory.tokens).toBe(kept.tokens)
            stage = 'accepted'
          } catch (e) {
            if (!(e instanceof StepkvError) || e.status < 400 || e.status >= 500) throw e
            stage = memoryStage(e.code, e.message)
          }
          stoppedAt.set(stage, (stoppedAt.get(stage) ?? 0) + 1)
          const kind = `${c.kind}${how === 'dev' ? '' : ` (${how} tag)`}`
          kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
          total++
        }),
        { numRuns: RUNS_PER_BASE, seed: 0x5eed + b },
      )
    }
    const table = stageTable(MEMORY_STAGES, stoppedAt)
    console.log(`memory fuzz (Node): ${total} blobs over ${fuzzBases().length} bases\n` + table.map((r) => `  ${r.stage.padEnd(11)} reached ${String(r.reached).padStart(5)}  stopped ${r.stopped}`).join('\n'))
    console.log('  kinds: ' + [...kinds].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join('; '))
    expect(total).toBe(RUNS_PER_BASE * fuzzBases().length)
    // The re-signing works: most inputs get past the HMAC, and every later stage is exercised.
    for (const stage of MEMORY_STAGES) expect(stoppedAt.get(stage) ?? 0, stage).toBeGreaterThan(0)
    expect(table[1].reached).toBeGreaterThan(0.8 * total)
  })
})
