/**
 * @module `SessionObject`: one Durable Object per session (SQLite storage). It runs a session's
 * steps one at a time: load memory (hot in RAM, else from its stored chunks), prefill, update with
 * the session's policy, persist memory + seq + reply in one transaction, then reply. A failed step
 * changes nothing; a retry of the last seq replays the stored reply without running.
 */
import { DurableObject } from 'cloudflare:workers'
import { decodeMemory, encodeMemory } from '../memory/codec.ts'
import { roundTrip } from '../memory/storage.ts'
import { BadRequestError, NotFoundError, SeqConflictError, StepkvError } from '../memory/errors.ts'
import { summary } from '../memory/session.ts'
import type { SessionMemory } from '../memory/types.ts'
import { packReply } from './body.ts'
import { initialMemory, policyFor, runStep, type StepRequest } from './engine.ts'
import type { Env } from './env.ts'
import { engineLimitsOf, type StepLimits } from './env.ts'
import { adapterOf, manifestOf, runtimeOf } from './models.ts'
import { checkImport, checkMemoryBytes, expectedShape, storageOf } from './import-check.ts'
import { logEvent } from './observe.ts'
import { checkIfMatch, etagOf } from './precondition.ts'
import { asResult, type Result } from './problem.ts'
import { SessionStore, type SessionConfig } from './storage.ts'

/** What a step returns to the Worker: the packed reply and, for the counters, its size figures. */
export interface StepResult {
  reply: Uint8Array
  /** Prefix tokens the step ran (0 for a replayed seq). */
  prefixTokens: number
  /** Stored memory blob after the step, bytes (0 for a replayed seq). */
  memoryBytes: number
}

/** `GET /v1/sessions/:id` reply. */
export interface SessionInfo {
  id: string
  model: string
  policy: SessionConfig['policy']
  memoryDtype: SessionConfig['memoryDtype']
  createdAt: string
  seq: number
  /** Strong ETag of the session state, `"<seq>.<generation>"`: the If-Match of a memory import. */
  etag: string
  memory: { tokensPerLayer: number[]; bytes: number; nextPosition: number; durableSeq: number }
}

export class SessionObject extends DurableObject<Env> {
  private store: SessionStore
  /** Decoded memory of the last durable state, with its blob size (bytes). */
  private hot?: { memory: SessionMemory; bytes: number }
  private lock: Promise<unknown> = Promise.resolve()

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env)
    this.store = new SessionStore(ctx.storage)
  }

  /** Creates the session (config, empty memory). Policy params are checked first. */
  async create(config: SessionConfig): Promise<Result<SessionInfo>> {
    return this.exclusive(() => {
      const manifest = manifestOf(config.model)
      const policy = policyFor(manifest, config.policy.name, config.policy.params)
      const memory = initialMemory(manifest, policy)
      let blob: Uint8Array
      try {
        blob = encodeMemory(memory, { policy: { name: policy.name, params: { ...policy.params } }, ...storageOf(config) })
      } catch (e) {
        if (e instanceof RangeError) throw new BadRequestError(`invalid storage options: ${e.message}`, {}, 'invalid_storage')
        throw e
      }
      this.store.create({ ...config, policy: { name: policy.name, params: { ...policy.params } } }, blob)
      this.hot = { memory, bytes: blob.byteLength }
      return this.describe(this.configFor(config.tenant))
    })
  }

  /** Session summary. @throws NotFoundError when absent or another tenant's */
  async info(tenant: string): Promise<Result<SessionInfo>> {
    return this.exclusive(() => this.describe(this.configFor(tenant)))
  }

  /**
   * Runs step `request.seq` (msgpack-encoded reply bytes come back; the Worker re-encodes as JSON
   * when asked). `stepLimits` are the tenant's (the Worker reads them from its environment). Writes
   * one structured log line (`observe.ts`), whatever the outcome.
   * @param requestId the Worker's request id, for the log line
   * @returns the packed reply, the step's prefix tokens and the stored memory bytes (0 and 0 for a
   *   replayed seq)
   * @throws SeqConflictError, BadRequestError, NumericError, StepkvError `too_many_tokens` (413),
   *   `memory_limit` (422) (nothing stored)
   */
  async step(tenant: string, request: StepRequest, stepLimits: StepLimits, requestId: string): Promise<Result<StepResult>> {
    return this.exclusive(async () => {
      const config = this.configFor(tenant)
      const t0 = performance.now()
      const line = { requestId, tenant, session: config.id, seq: request.seq, model: config.model, policy: config.policy.name }
      try {
        const r = await this.runOneStep(config, request, stepLimits)
        logEvent('step', {
          ...line,
          outcome: r.replayed ? 'replay' : 'ok',
          status: 200,
          prefixTokens: r.prefixTokens,
          memoryTokens: r.memoryTokens,
          memoryBytes: r.memoryBytes,
          ...(r.timings && { timings: r.timings }),
          totalMs: performance.now() - t0,
        })
        return { reply: r.reply, prefixTokens: r.prefixTokens, memoryBytes: r.memoryBytes }
      } catch (e) {
        const known = e instanceof StepkvError
        logEvent('step', { ...line, outcome: known ? e.code : 'internal', status: known ? e.status : 500, totalMs: performance.now() - t0 })
        throw e
      }
    })
  }

  private async runOneStep(config: SessionConfig, request: StepRequest, stepLimits: StepLimits) {
    const last = this.store.seq()
    if (request.seq === last && last > 0) {
      const reply = this.store.reply()
      if (reply) return { reply, replayed: true, prefixTokens: 0, memoryTokens: 0, memoryBytes: 0 }
      throw new SeqConflictError(`step ${last} was followed by a memory import; send seq ${last + 1}`, { lastSeq: last })
    }
    if (request.seq !== last + 1)
      throw new SeqConflictError(`expected seq ${last + 1}${last > 0 ? ` (or ${last} to replay)` : ''}, got ${request.seq}`, {
        lastSeq: last,
        expectedSeq: last + 1,
      })
    const t0 = performance.now()
    const current = this.load(config)
    const loadMs = performance.now() - t0
    const policy = policyFor(manifestOf(config.model), config.policy.name, config.policy.params)
    const runtime = runtimeOf(config.model)
    const limits = engineLimitsOf(this.env, stepLimits)
    const adapter = adapterOf(config.model, limits.maxPrefixTokens)
    const outcome = await runStep(runtime, current.memory, policy, request, limits, adapter)
    const t1 = performance.now()
    // The next step runs on what a reload would give (float16/KIVI round trip), so a hot session
    // and one reloaded after eviction never differ.
    const kept = roundTrip(outcome.memory, storageOf(config))
    const blob = encodeMemory(kept, { policy: config.policy, ...storageOf(config) })
    checkMemoryBytes(blob.byteLength, stepLimits.memoryBytesPerSession, 422)
    const persistMs = performance.now() - t1
    const s = summary(kept)
    const logits = outcome.logits
    const timings = { ...outcome.timings, loadMs, persistMs }
    const reply = {
      seq: request.seq,
      action: outcome.action,
      memory: {
        tokensPerLayer: s.tokensPerLayer,
        bytes: blob.byteLength,
        nextPosition: s.nextPosition,
        durableSeq: request.seq,
        etag: etagOf(request.seq, this.store.generation() + 1), // the save below advances it
      },
      // persistMs is the memory encode; the transaction below commits before the Durable
      // Object's output gate releases the reply, so the reply is never ahead of storage.
      timings,
      backend: runtime.backend,
      ...(logits && {
        logits: {
          dtype: 'float32',
          dims: logits.dims,
          data: new Uint8Array(logits.data.buffer, logits.data.byteOffset, logits.data.byteLength),
        },
      }),
    }
    const packed = packReply(reply)
    this.store.save({ seq: request.seq, memory: blob, reply: packed })
    this.hot = { memory: kept, bytes: blob.byteLength }
    return { reply: packed, replayed: false, prefixTokens: outcome.prefixTokens, memoryTokens: kept.tokens, memoryBytes: blob.byteLength, timings }
  }

  /** The session's memory blob (SKVM envelope, unsigned: the Worker signs it for the tenant) and
   * the ETag of the state it is. */
  async exportMemory(tenant: string): Promise<Result<{ blob: Uint8Array; etag: string }>> {
    return this.exclusive(() => {
      this.configFor(tenant)
      return { blob: this.store.memory()!, etag: this.etag() }
    })
  }

  /**
   * Replaces the session's memory with an imported blob after full validation (magic, version,
   * CRC, model sha256, shapes, finite values within ±MAX_KV_ABS). The blob is signed (`hmac:
   * true`) and its tag was verified by the Worker with the tenant's key. On any error the stored memory is
   * untouched. The session then continues from the blob's step: its last seq becomes the blob's
   * `seq` (so importing an earlier export of the same session rolls it back, and a blob exported
   * from another session at seq 5 continues here at seq 6); the stored reply is dropped.
   * @param ifMatch the strong ETags of If-Match: the session's current ETag must be one of them
   * @param memoryBytesPerSession the tenant's limit on the stored blob (bytes): 413 `memory_limit`
   * @throws StepkvError `precondition_failed` (412) when the session moved on (a step or import
   *   since the client read its ETag); ModelMismatchError when the blob's model id differs,
   *   `policy_mismatch` (422) when its policy name or parameters differ from the session's;
   *   MemoryCodecError as `decodeMemory`, `memory_out_of_range`; one log line either way
   */
  async importMemory(tenant: string, blob: Uint8Array, ifMatch: string[], memoryBytesPerSession: number, requestId: string): Promise<Result<SessionInfo>> {
    return this.exclusive(() => {
      const config = this.configFor(tenant)
      const line = { requestId, tenant, session: config.id, model: config.model, policy: config.policy.name, blobBytes: blob.byteLength }
      try {
        const info = this.importChecked(config, blob, ifMatch, memoryBytesPerSession)
        logEvent('import', { ...line, outcome: 'ok', status: 200, seq: info.seq, memoryBytes: info.memory.bytes })
        return info
      } catch (e) {
        const known = e instanceof StepkvError
        logEvent('import', { ...line, outcome: known ? e.code : 'internal', status: known ? e.status : 500 })
        throw e
      }
    })
  }

  private importChecked(config: SessionConfig, blob: Uint8Array, ifMatch: string[], memoryBytesPerSession: number): SessionInfo {
    checkIfMatch(ifMatch, this.etag(), this.store.seq())
    // The Worker verified the blob's HMAC-SHA256 with this tenant's key (app.ts) before calling.
    const { memory, kept, stored } = checkImport(blob, manifestOf(config.model), config, memoryBytesPerSession)
    this.store.save({ seq: memory.seq, memory: stored, reply: null })
    this.hot = { memory: kept, bytes: stored.byteLength }
    return this.describe(config)
  }

  /** Deletes the session and all it stores. */
  async destroy(tenant: string): Promise<Result<{ deleted: true }>> {
    return this.exclusive(async () => {
      this.configFor(tenant)
      this.hot = undefined
      await this.ctx.storage.deleteAll()
      // deleteAll drops the tables too: recreate them so later requests answer 404, not 500.
      this.store = new SessionStore(this.ctx.storage)
      return { deleted: true as const }
    })
  }

  private load(config: SessionConfig): { memory: SessionMemory; bytes: number } {
    if (this.hot) return this.hot
    const blob = this.store.memory()
    if (!blob) throw new NotFoundError('session has no stored memory')
    const { memory } = decodeMemory(blob, expectedShape(manifestOf(config.model), config))
    return (this.hot = { memory, bytes: blob.byteLength })
  }

  private configFor(tenant: string): SessionConfig {
    const config = this.store.config()
    if (!config || config.tenant !== tenant) throw new NotFoundError('unknown session', {}, 'unknown_session')
    return config
  }

  private describe(config: SessionConfig): SessionInfo {
    const { memory, bytes } = this.load(config)
    const s = summary(memory)
    const seq = this.store.seq()
    return {
      id: config.id,
      model: config.model,
      policy: config.policy,
      memoryDtype: config.memoryDtype,
      createdAt: config.createdAt,
      seq,
      etag: this.etag(),
      memory: { tokensPerLayer: s.tokensPerLayer, bytes, nextPosition: s.nextPosition, durableSeq: seq },
    }
  }

  private etag(): string {
    return etagOf(this.store.seq(), this.store.generation())
  }

  /** Runs `fn` after every earlier call on this object finished (steps never interleave). */
  private exclusive<T>(fn: () => T | Promise<T>): Promise<Result<T>> {
    const run = this.lock.then(() => asResult(fn))
    this.lock = run.catch(() => undefined)
    return run
  }
}
