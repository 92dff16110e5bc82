/**
 * Fuzz, in Node: mutated step requests through the path the Worker and the Durable Object run —
 * body limit, `readBody` (JSON, or msgpack after the bounded pre-scan), the zod schema, the seq rule,
 * then `runStep` on `tiny-gqa` (ORT-web in Node) against a session memory. Every input must end in
 * a 4xx StepkvError or a step, the memory handed to the engine must be left byte-identical either
 * way (the Durable Object keeps it as its hot state), and the suite prints the stage counts.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { encodeMemory } from '../../memory/codec.ts'
import { PayloadTooLargeError, StepkvError } from '../../memory/errors.ts'
import type { SessionMemory } from '../../memory/types.ts'
import { nodeModelSource } from '../../gpu/node-models.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { ModelRuntime } from '../../gpu/session.ts'
import { readBody } from '../../worker/body.ts'
import { initialMemory, policyFor, runStep, type StepRequest } from '../../worker/engine.ts'
import { parse, StepRequestSchema } from '../../worker/schemas.ts'
import { requestCase, REQUEST_STAGES, requestStage, stageTable, type RequestStage } from './mutations.ts'

const RUNS = 4000
const STEP_BODY_BYTES = 8 << 20
const runtime = ModelRuntime.for(ortForNode(), nodeModelSource('tiny-gqa'))
const manifest = runtime.manifest
const policy = policyFor(manifest, 'window', { sinkTokens: 2, recentTokens: 30 })
const limits = { maxPrefixTokens: 4096, maxMemoryTokens: 16384 }
const storage = { policy: { name: policy.name, params: { ...policy.params } }, dtype: 'float32' as const }

/** One request through the Worker's and the Durable Object's checks and the engine. */
async function handle(body: Uint8Array, contentType: string, memory: SessionMemory, nextSeq: number): Promise<void> {
  if (body.byteLength > STEP_BODY_BYTES) throw new PayloadTooLargeError('too large')
  const request = parse(StepRequestSchema, await readBody(new Request('http://stepkv.test/v1/sessions/x/steps', { method: 'POST', headers: { 'content-type': contentType }, body: body as Uint8Array<ArrayBuffer> }))) as StepRequest
  if (request.seq !== nextSeq) throw new StepkvError('seq_conflict', 409, `expected seq ${nextSeq}`)
  await runStep(runtime, memory, policy, request, limits)
}

describe('step request fuzz (Node)', () => {
  it(`${RUNS} mutated requests: 4xx or a step, never a crash; the engine's input memory never changes`, async () => {
    let memory = initialMemory(manifest, policy)
    for (let seq = 1; seq <= 3; seq++) memory = (await runStep(runtime, memory, policy, { seq, observation: { text: `screen ${seq}: the settings page` } }, limits)).memory
    const nextSeq = 4
    const before = encodeMemory(memory, storage)
    const stoppedAt = new Map<RequestStage, number>()
    const codes = new Map<string, number>()
    await fc.assert(
      fc.asyncProperty(requestCase(nextSeq), async (c) => {
        let code: string | undefined
        try {
          await handle(c.body, c.contentType, memory, nextSeq)
        } catch (e) {
          if (!(e instanceof StepkvError) || e.status < 400 || e.status >= 500) throw e
          code = e.code
        }
        stoppedAt.set(requestStage(code), (stoppedAt.get(requestStage(code)) ?? 0) + 1)
        codes.set(code ?? '200', (codes.get(code ?? '200') ?? 0) + 1)
      }),
      { numRuns: RUNS, seed: 0x5eed },
    )
    expect(encodeMemory(memory, storage)).toEqual(before)
    const table = stageTable(REQUEST_STAGES, stoppedAt)
    console.log(`request fuzz (Node): ${RUNS} requests\n` + table.map((r) => `  ${r.stage.padEnd(8)} reached ${String(r.reached).padStart(5)}  stopped ${r.stopped}`).join('\n'))
    console.log('  codes: ' + [...codes].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join('; '))
    for (const stage of REQUEST_STAGES) expect(stoppedAt.get(stage) ?? 0, stage).toBeGreaterThan(0)
  })
})
