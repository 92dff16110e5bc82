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
import { checkLayoutFits, initialMemory, policyFor, runStep, type StepRequest } from './engine.ts'
import type { Env } from './env.ts'
import { engineLimitsOf, memoryLimitsOf, type StepLimits } from './env.ts'
import { adapterOf, manifestOf, runtimeOf } from './models.ts'
import { checkImport, checkMemoryBytes, expectedShape, storageOf } from './import-check.ts'
import { logEvent } from './observe.ts'
import { checkIfMatch, etagOf } from './precondition.ts'
import { asResult, type Result } from './problem.ts'
import { SessionStore, type SessionConfig } from './storage.ts'
import { forwardAndSave, type FallbackInfo } from './gpu-forward.ts'
import { checkSnapshotRoom, defaultSnapshotName, idleTtlMs, nextAlarm, reconfiguredMemory } from './lifecycle.ts'
import { SnapshotStore, type SnapshotMeta } from './snapshots.ts'
import { acceptSocket, answerFrame } from './ws.ts'
import { ViewHistory, type ViewStep } from './view-history.ts'
import { faultPoint, type StepStage } from './faults.ts'
import { FrameStore, type RetainedFrame } from './frames.ts'
import { checkIsolateBudget, decodeFactor, isolateBudgetBytes } from './isolate-budget.ts'
import { deleteSessionObjects, persistMemory, readMemory, type MemoryPointer } from './memory-offload.ts'

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
  /** Idle TTL (s): the session expires after this long without a request; 0 = never. */
  idleTtlSeconds: number
  /** Observations of the last N steps kept (`frames.ts`); 0: none is stored beyond its step. */
  retainFrames: number
  /** The step layout (`StepLayout`, engine.ts): 'dynamic' or 'fixed'. */
  layout: 'dynamic' | 'fixed'
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
    return this.exclusive(async () => {
      const manifest = manifestOf(config.model)
      const policy = policyFor(manifest, config.policy.name, config.policy.params)
      checkLayoutFits(policy, config.layout, { manifest, ...memoryLimitsOf(this.env) })
      const memory = initialMemory(manifest, policy)
      let blob: Uint8Array
      try {
        blob = encodeMemory(memory, { policy: { name: policy.name, params: { ...policy.params } }, ...storageOf(config) })
      } catch (e) {
        if (e instanceof RangeError) throw new BadRequestError(`invalid storage options: ${e.message}`, {}, 'invalid_storage')
        throw e
      }
      const stored = { ...config, policy: { name: policy.name, params: { ...policy.params } } }
      await this.persist(config, 0, blob, (offloaded) => this.store.create(stored, blob, offloaded))
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
      throw new SeqConflictError(`the state after step ${last} was replaced (memory import, reset, rollback or fork), so its reply cannot be replayed; send seq ${last + 1}`, { lastSeq: last })
    }
    if (request.seq !== last + 1)
      throw new SeqConflictError(`expected seq ${last + 1}${last > 0 ? ` (or ${last} to replay)` : ''}, got ${request.seq}`, {
        lastSeq: last,
        expectedSeq: last + 1,
      })
    let fallback: FallbackInfo | undefined
    if (config.backend === 'gpu') {
      // Forwarded to the GPU host (gpu-forward.ts); on its fallback the step runs here, below.
      const f = await forwardAndSave(this.env, this.store, this.ctx.id.toString(), config, request, stepLimits, (seq, blob, commit) => this.persist(config, seq, blob, commit))
      if (!('fallback' in f)) {
        if (f.memoryChanged) this.hot = undefined
        return f
      }
      fallback = f.fallback
    }
    this.fault('before-load')
    const t0 = performance.now()
    const current = await this.load(config)
    const loadMs = performance.now() - t0
    this.fault('load-infer')
    const policy = policyFor(manifestOf(config.model), config.policy.name, config.policy.params)
    const runtime = runtimeOf(config.model)
    const limits = { ...engineLimitsOf(this.env, stepLimits), layout: config.layout }
    const adapter = adapterOf(config.model, limits.maxPrefixTokens)
    const outcome = await runStep(runtime, current.memory, policy, request, limits, adapter, (stage) => this.fault(stage))
    this.fault('policy-persist')
    const t1 = performance.now()
    // The next step runs on what a reload would give (float16/KIVI round trip), so a hot session
    // and one reloaded after eviction never differ.
    const kept = roundTrip(outcome.memory, storageOf(config), current.memory)
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
      ...(fallback && { fallback }),
      ...(logits && {
        logits: {
          dtype: 'float32',
          dims: logits.dims,
          data: new Uint8Array(logits.data.buffer, logits.data.byteOffset, logits.data.byteLength),
        },
      }),
    }
    const packed = packReply(reply)
    // The blob goes to R2 first when it is large (memory-offload.ts); the writes below then run in
    // one synchronous block, as without R2; the previous R2 object is deleted after them.
    await this.persist(config, request.seq, blob, (offloaded) => {
      this.store.save({ seq: request.seq, memory: blob, reply: packed, offloaded }, () => this.fault('mid-persist'))
      this.hot = { memory: kept, bytes: blob.byteLength }
      new ViewHistory(this.ctx.storage).record(kept, request.seq, outcome.prefixTokens) // the inspector page's history (view.ts)
      // Retention (off by default): the observation, in the same synchronous block as the state.
      if (config.retainFrames) new FrameStore(this.ctx.storage).keep(request.seq, packReply(request.observation), config.retainFrames)
    })
    const pending = this.fault('persist-reply')
    if (pending) await pending
    return { reply: packed, replayed: false, prefixTokens: outcome.prefixTokens, memoryTokens: kept.tokens, memoryBytes: blob.byteLength, timings }
  }

  /** What the inspector page (`view.ts`) draws: the configuration, seq, unsigned memory blob and
   * the per-step statistics up to the current seq (`view-history.ts`). Read-only. */
  async viewState(tenant: string): Promise<Result<{ config: SessionConfig; seq: number; blob: Uint8Array; history: ViewStep[] }>> {
    return this.exclusive(async () => {
      const config = this.configFor(tenant)
      const seq = this.store.seq()
      return { config, seq, blob: (await this.storedMemory())!, history: new ViewHistory(this.ctx.storage).list(seq) }
    })
  }

  /** The retained observations' steps and sizes, oldest first (none unless created with
   * `retainFrames`). */
  async retainedFrames(tenant: string): Promise<Result<{ retainFrames: number; frames: RetainedFrame[] }>> {
    return this.exclusive(() => {
      const config = this.configFor(tenant)
      return { retainFrames: config.retainFrames ?? 0, frames: config.retainFrames ? new FrameStore(this.ctx.storage).list() : [] }
    })
  }

  /** Step `seq`'s retained observation (msgpack). @throws NotFoundError `unknown_frame` */
  async retainedFrame(tenant: string, seq: number): Promise<Result<Uint8Array>> {
    return this.exclusive(() => {
      const config = this.configFor(tenant)
      const packed = config.retainFrames ? new FrameStore(this.ctx.storage).get(seq) : null
      if (!packed) throw new NotFoundError(`no retained frame of step ${seq}`, { seq }, 'unknown_frame')
      return packed
    })
  }

  /** A new episode or another state: the retained observations no longer belong to it. */
  private dropRetainedFrames(config: SessionConfig): void {
    if (config.retainFrames) new FrameStore(this.ctx.storage).clear()
  }

  /** The session's memory blob (SKVM envelope, unsigned: the Worker signs it for the tenant) and
   * the ETag of the state it is. */
  async exportMemory(tenant: string): Promise<Result<{ blob: Uint8Array; etag: string }>> {
    return this.exclusive(async () => {
      this.configFor(tenant)
      return { blob: (await this.storedMemory())!, etag: this.etag() }
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
    return this.exclusive(async () => {
      const config = this.configFor(tenant)
      const line = { requestId, tenant, session: config.id, model: config.model, policy: config.policy.name, blobBytes: blob.byteLength }
      try {
        const info = await this.importChecked(config, blob, ifMatch, memoryBytesPerSession)
        logEvent('import', { ...line, outcome: 'ok', status: 200, seq: info.seq, memoryBytes: info.memory.bytes })
        return info
      } catch (e) {
        const known = e instanceof StepkvError
        logEvent('import', { ...line, outcome: known ? e.code : 'internal', status: known ? e.status : 500 })
        throw e
      }
    })
  }

  private async importChecked(config: SessionConfig, blob: Uint8Array, ifMatch: string[], memoryBytesPerSession: number): Promise<SessionInfo> {
    checkIfMatch(ifMatch, this.etag(), this.store.seq())
    this.checkDecodeBudget(config, blob.byteLength, 'the imported memory')
    // The Worker verified the blob's HMAC-SHA256 with this tenant's key (app.ts) before calling.
    const { memory, kept, stored } = checkImport(blob, manifestOf(config.model), config, memoryBytesPerSession)
    await this.persist(config, memory.seq, stored, (offloaded) => {
      this.store.save({ seq: memory.seq, memory: stored, reply: null, offloaded })
      this.dropRetainedFrames(config)
    })
    this.hot = { memory: kept, bytes: stored.byteLength }
    return this.describe(config)
  }

  /** Deletes the session and all it stores. */
  async destroy(tenant: string): Promise<Result<{ deleted: true }>> {
    return this.exclusive(async () => {
      const config = this.configFor(tenant)
      this.hot = undefined
      await deleteSessionObjects(this.env, config.tenant, config.id) // its R2 memory objects, if any
      await this.ctx.storage.deleteAll()
      // deleteAll drops the tables too: recreate them so later requests answer 404, not 500.
      this.store = new SessionStore(this.ctx.storage)
      return { deleted: true as const }
    })
  }

  // ── WebSocket steps (worker/ws.ts): hibernation API, one msgpack step per binary frame ─────────

  /** The WebSocket upgrade the Worker forwards (`GET /v1/sessions/:id/ws`). */
  override async fetch(request: Request): Promise<Response> {
    return acceptSocket(this.ctx, request, (tenant) => void this.configFor(tenant))
  }

  /** One step frame: answered with the packed step reply or a problem, in order (`step` queues). */
  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    await answerFrame(this.ctx, this.env, ws, message, (tenant, request, limits, requestId) => this.step(tenant, request, limits, requestId))
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    // Echo the client's close; 1005/1006/1015 are reserved (never sent), so answer those with 1000.
    ws.close([1005, 1006, 1015].includes(code) ? 1000 : code, reason)
  }

  // ── Lifecycle (worker/lifecycle.ts has the rules, lifecycle-routes.ts the routes) ──────────────

  /** The alarm time now set (ms since the epoch; null: none), once read; undefined: not read yet. */
  private alarmAt?: number | null

  /** Moves the idle-expiry alarm after a successful call (at most once per slack, `nextAlarm`). */
  private async keepAlive(): Promise<void> {
    const config = this.store.config()
    if (!config) return
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm()
    const next = nextAlarm(Date.now(), idleTtlMs(this.env, config), this.alarmAt)
    if (next === null) return
    await this.ctx.storage.setAlarm(next)
    this.alarmAt = next
  }

  /** Idle expiry: the session (memory, snapshots) is deleted and its quota slot freed, unless a
   * request moved the alarm since (then it is set again for the later time). */
  override async alarm(): Promise<void> {
    const run = this.lock.then(async () => {
      const due = this.alarmAt ?? 0
      this.alarmAt = null
      const config = this.store.config()
      if (!config || idleTtlMs(this.env, config) <= 0) return
      if (Date.now() < due) {
        await this.ctx.storage.setAlarm(due)
        this.alarmAt = due
        return
      }
      const ns = this.env.TENANTS
      if (ns) await ns.get(ns.idFromName(config.tenant)).release(config.id)
      for (const ws of this.ctx.getWebSockets()) ws.close(1001, 'session expired')
      this.hot = undefined
      await deleteSessionObjects(this.env, config.tenant, config.id)
      await this.ctx.storage.deleteAll()
      this.store = new SessionStore(this.ctx.storage)
      console.log(JSON.stringify({ level: 'info', event: 'expire', tenant: config.tenant, session: config.id, idleTtlSeconds: idleTtlMs(this.env, config) / 1000 }))
    })
    this.lock = run.catch(() => undefined)
    await run
  }

  /**
   * A new episode with the same configuration: empty memory, seq 0 (the next step is seq 1), no
   * stored reply. Snapshots are kept.
   * @param ifMatch the If-Match tags, or null to reset whatever the state
   * @throws StepkvError `precondition_failed` (412) when `ifMatch` does not name the current state
   */
  async reset(tenant: string, ifMatch: string[] | null): Promise<Result<SessionInfo>> {
    return this.exclusive(async () => {
      const config = this.configFor(tenant)
      if (ifMatch) checkIfMatch(ifMatch, this.etag(), this.store.seq())
      const manifest = manifestOf(config.model)
      const memory = initialMemory(manifest, policyFor(manifest, config.policy.name, config.policy.params))
      const blob = encodeMemory(memory, { policy: config.policy, ...storageOf(config) })
      await this.persist(config, 0, blob, (offloaded) => {
        this.store.save({ seq: 0, memory: blob, reply: null, offloaded })
        this.dropRetainedFrames(config)
      })
      this.hot = { memory, bytes: blob.byteLength }
      return this.describe(config)
    })
  }

  /**
   * Keeps the current state (memory blob, seq, policy) as snapshot `name`.
   * @param name default `seq-<seq>.<generation>`
   * @param limit most snapshots per session
   * @throws StepkvError `snapshot_exists` (409), `snapshot_limit` (409)
   */
  async snapshot(tenant: string, name: string | undefined, limit: number): Promise<Result<SnapshotMeta>> {
    return this.exclusive(async () => {
      const config = this.configFor(tenant)
      this.checkDurable('snapshot')
      const snapshots = new SnapshotStore(this.ctx.storage)
      const etag = this.etag()
      const snapshotName = name ?? defaultSnapshotName(etag)
      if (snapshots.meta(snapshotName))
        throw new StepkvError('snapshot_exists', 409, `snapshot '${snapshotName}' exists: delete it or choose another name`, { snapshot: snapshotName })
      checkSnapshotRoom(snapshots.count(), limit)
      const blob = (await this.storedMemory())! // snapshots stay in SQLite chunks, whatever the size
      const meta: SnapshotMeta = {
        name: snapshotName,
        seq: this.store.seq(),
        etag,
        createdAt: new Date().toISOString(),
        policy: config.policy,
        bytes: blob.byteLength,
        tokensPerLayer: summary((await this.load(config)).memory).tokensPerLayer,
      }
      snapshots.put(meta, blob)
      return meta
    })
  }

  /** The session's snapshots, oldest first. */
  async listSnapshots(tenant: string): Promise<Result<SnapshotMeta[]>> {
    return this.exclusive(() => {
      this.configFor(tenant)
      return new SnapshotStore(this.ctx.storage).list()
    })
  }

  /** Deletes snapshot `name`. @throws NotFoundError `unknown_snapshot` */
  async deleteSnapshot(tenant: string, name: string): Promise<Result<{ deleted: true }>> {
    return this.exclusive(() => {
      this.configFor(tenant)
      if (!new SnapshotStore(this.ctx.storage).delete(name)) throw unknownSnapshot(name)
      return { deleted: true as const }
    })
  }

  /**
   * Goes back to snapshot `name`: its memory, seq and policy (the next step is its seq + 1). The
   * snapshot stays, so a GUI agent can backtrack to it again.
   * @throws NotFoundError `unknown_snapshot`; StepkvError `precondition_failed` (412) as `reset`
   */
  async rollback(tenant: string, name: string, ifMatch: string[] | null): Promise<Result<SessionInfo>> {
    return this.exclusive(async () => {
      const config = this.configFor(tenant)
      if (ifMatch) checkIfMatch(ifMatch, this.etag(), this.store.seq())
      const { meta, blob } = this.snapshotOf(name)
      const restored: SessionConfig = { ...config, policy: meta.policy }
      const { memory } = decodeMemory(blob, expectedShape(manifestOf(config.model), restored), { trusted: true })
      await this.persist(config, meta.seq, blob, (offloaded) => {
        this.store.replace(restored, { seq: meta.seq, memory: blob, reply: null, offloaded })
        this.dropRetainedFrames(config)
      })
      this.hot = { memory, bytes: blob.byteLength }
      return this.describe(restored)
    })
  }

  /** What a fork copies: the configuration and the memory blob + seq of the current state or of
   * snapshot `snapshot`. @throws NotFoundError `unknown_snapshot` */
  async forkSource(tenant: string, snapshot?: string): Promise<Result<{ config: SessionConfig; blob: Uint8Array; seq: number }>> {
    return this.exclusive(async () => {
      const config = this.configFor(tenant)
      if (snapshot === undefined) {
        this.checkDurable('fork')
        return { config, blob: (await this.storedMemory())!, seq: this.store.seq() }
      }
      const { meta, blob } = this.snapshotOf(snapshot)
      return { config: { ...config, policy: meta.policy }, blob, seq: meta.seq }
    })
  }

  /** Creates this (new) session as a fork: `config` (its own id), the source's memory blob and
   * seq, in one transaction. @throws StepkvError `session_exists` (409) if this object holds one */
  async adopt(config: SessionConfig, blob: Uint8Array, seq: number): Promise<Result<SessionInfo>> {
    return this.exclusive(async () => {
      if (this.store.config()) throw new StepkvError('session_exists', 409, `session ${config.id} exists`)
      const { memory } = decodeMemory(blob, expectedShape(manifestOf(config.model), config), { trusted: true })
      await this.persist(config, seq, blob, (offloaded) => this.store.replace(config, { seq, memory: blob, reply: null, offloaded }))
      this.hot = { memory, bytes: blob.byteLength }
      return this.describe(config)
    })
  }

  /**
   * Changes the session's policy (or its budget, a parameter) keeping its memory, where the memory
   * allows it (`reconfiguredMemory`); the stored memory is re-encoded under the new policy, so
   * exports before the change no longer import (422 `policy_mismatch`).
   * @throws PolicyConfigError (400) for an invalid policy or one the model cannot serve;
   *   StepkvError `policy_incompatible` (409); `precondition_failed` (412) as `reset`
   */
  async reconfigure(tenant: string, policy: { name: string; params: Record<string, number | string | boolean> }, ifMatch: string[] | null): Promise<Result<SessionInfo>> {
    return this.exclusive(async () => {
      const config = this.configFor(tenant)
      if (ifMatch) checkIfMatch(ifMatch, this.etag(), this.store.seq())
      this.checkDurable('policy change')
      const manifest = manifestOf(config.model)
      const from = policyFor(manifest, config.policy.name, config.policy.params)
      const to = policyFor(manifest, policy.name, policy.params)
      checkLayoutFits(to, config.layout, { manifest, ...memoryLimitsOf(this.env) })
      const ref = { name: to.name, params: { ...to.params } }
      const memory = reconfiguredMemory((await this.load(config)).memory, from, to)
      const blob = encodeMemory(memory, { policy: ref, ...storageOf(config) })
      const next: SessionConfig = { ...config, policy: ref }
      const seq = this.store.seq()
      const reply = this.store.reply()
      await this.persist(config, seq, blob, (offloaded) => this.store.replace(next, { seq, memory: blob, reply, offloaded }))
      this.hot = { memory, bytes: blob.byteLength }
      return this.describe(next)
    })
  }

  /** Snapshot, fork and a policy change copy the stored memory, which must be of the last step: a
   * GPU session's host may hold steps past its durable copy (write-behind, `gpu-forward.ts`).
   * @throws StepkvError `memory_not_durable` (409) naming both seqs */
  private checkDurable(what: string): void {
    const seq = this.store.seq()
    const durableSeq = this.store.durableSeq()
    if (durableSeq !== seq)
      throw new StepkvError('memory_not_durable', 409, `cannot ${what}: the stored memory is of step ${durableSeq}, the GPU host holds the session up to step ${seq}; retry after the host writes its durable copy`, { seq, durableSeq })
  }

  private snapshotOf(name: string): { meta: SnapshotMeta; blob: Uint8Array } {
    const snapshots = new SnapshotStore(this.ctx.storage)
    const meta = snapshots.meta(name)
    const blob = meta && snapshots.blob(name)
    if (!meta || !blob) throw unknownSnapshot(name)
    return { meta, blob }
  }

  /** A stage boundary of a step: test-only fault injection (`faults.ts`), inert in production. */
  private fault(stage: StepStage): void | Promise<void> {
    return faultPoint(this, this.env, stage)
  }

  /** The decoded memory: the hot copy, else the stored blob (SQLite or R2) decoded.
   * @throws StepkvError `isolate_memory_budget` (422); as `fetchMemory` for a blob in R2 (503
   *   `memory_store_unavailable`, 500 `stored_memory_corrupt`); NotFoundError when none is stored */
  private async load(config: SessionConfig): Promise<{ memory: SessionMemory; bytes: number }> {
    if (this.hot) return this.hot
    // Fail closed before reading and decoding a memory this isolate cannot hold (`isolate-budget.ts`).
    this.checkDecodeBudget(config, this.store.memoryBytes(), "the session's stored memory")
    const blob = await this.storedMemory()
    if (!blob) throw new NotFoundError('session has no stored memory')
    const { memory } = decodeMemory(blob, expectedShape(manifestOf(config.model), config), { trusted: true })
    return (this.hot = { memory, bytes: blob.byteLength })
  }

  /** @throws StepkvError `isolate_memory_budget` (422) when decoding `blobBytes` of this session's
   * storage (the blob and its float32 form) would exceed the isolate memory budget */
  private checkDecodeBudget(config: SessionConfig, blobBytes: number, what: string): void {
    const bits = Math.min(config.kivi?.bits ?? 4, ...(config.kivi?.layerBits ?? []))
    checkIsolateBudget(blobBytes * decodeFactor(config.memoryDtype, bits), isolateBudgetBytes(this.env), `decoding ${what} (${blobBytes} bytes, ${config.memoryDtype})`)
  }

  private configFor(tenant: string): SessionConfig {
    const config = this.store.config()
    if (!config || config.tenant !== tenant) throw new NotFoundError('unknown session', {}, 'unknown_session')
    return config
  }

  /** The stored memory blob, in SQLite chunks or R2 (`memory-offload.ts`), or null.
   * @throws as `fetchMemory` (503 `memory_store_unavailable`, 500 `stored_memory_corrupt`) */
  private storedMemory(): Promise<Uint8Array | null> {
    return readMemory(this.env, this.store)
  }

  /** Writes a new memory blob: to R2 first when it is large (`persistMemory`), then `commit` (one
   * transaction with the pointer or the chunks), then the previous R2 object is deleted.
   * @throws StepkvError `memory_store_unavailable` (503) when the R2 put fails (nothing stored) */
  private persist(config: SessionConfig, seq: number, blob: Uint8Array, commit: (offloaded: MemoryPointer | null) => void): Promise<void> {
    return persistMemory(this.env, this.store, { tenant: config.tenant, session: config.id, seq }, blob, commit)
  }

  private async describe(config: SessionConfig): Promise<SessionInfo> {
    const { memory, bytes } = await this.load(config)
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
      idleTtlSeconds: idleTtlMs(this.env, config) / 1000,
      retainFrames: config.retainFrames ?? 0,
      layout: config.layout ?? 'dynamic',
      memory: { tokensPerLayer: s.tokensPerLayer, bytes, nextPosition: s.nextPosition, durableSeq: seq },
    }
  }

  private etag(): string {
    return etagOf(this.store.seq(), this.store.generation())
  }

  /** Runs `fn` after every earlier call on this object finished (steps never interleave); a call
   * that succeeds on a live session postpones its idle expiry (`keepAlive`). */
  private exclusive<T>(fn: () => T | Promise<T>): Promise<Result<T>> {
    const run = this.lock.then(() =>
      asResult(async () => {
        const value = await fn()
        await this.keepAlive()
        return value
      }),
    )
    this.lock = run.catch(() => undefined)
    return run
  }
}

function unknownSnapshot(name: string): NotFoundError {
  return new NotFoundError(`unknown snapshot '${name}'`, { snapshot: name }, 'unknown_snapshot')
}
