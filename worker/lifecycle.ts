/**
 * @module Session lifecycle rules, apart from the Durable Object that applies them: the idle TTL
 * (expiry by Durable Object alarm), the snapshot limit, and whether a session's memory can change
 * policy mid-session (`reconfiguredMemory`). Pure: time and limits are arguments.
 */
import { BadRequestError, StepkvError } from '../memory/errors.ts'
import type { Policy, SessionMemory } from '../memory/types.ts'
import type { Env } from './env.ts'
import { intVar } from './limits.ts'
import type { SessionConfig } from './storage.ts'

/** Default idle TTL (s) when `SESSION_IDLE_TTL_SECONDS` is unset: one day. */
export const DEFAULT_IDLE_TTL_SECONDS = 86_400
/** Default most snapshots per session when `MAX_SNAPSHOTS_PER_SESSION` is unset. */
export const DEFAULT_MAX_SNAPSHOTS = 8

/** The deployment's idle TTL (s): `SESSION_IDLE_TTL_SECONDS`, 0 = sessions never expire. */
export function deploymentTtlSeconds(env: Env): number {
  const n = Number(env.SESSION_IDLE_TTL_SECONDS ?? DEFAULT_IDLE_TTL_SECONDS)
  return Number.isInteger(n) && n >= 0 ? n : DEFAULT_IDLE_TTL_SECONDS
}

/**
 * The idle TTL a new session asks for, checked against the deployment's.
 * @param requested `idleTtlSeconds` of `POST /v1/sessions`, or undefined for the deployment's
 * @returns the session's TTL (s); 0 = never expires
 * @throws BadRequestError (`invalid_request`) when it is longer than the deployment's TTL (a
 *   session may only expire sooner; with no deployment TTL any value is accepted)
 */
export function sessionTtlSeconds(env: Env, requested: number | undefined): number {
  const max = deploymentTtlSeconds(env)
  if (requested === undefined) return max
  if (max > 0 && requested > max)
    throw new BadRequestError(`idleTtlSeconds ${requested} is over this deployment's idle TTL of ${max} s`, { errors: [{ path: 'idleTtlSeconds', message: `must be ≤ ${max}` }], max }, 'invalid_request')
  return requested
}

/** The session's TTL (ms); 0 = never expires. Sessions created before TTLs existed get the deployment's. */
export function idleTtlMs(env: Env, config: Pick<SessionConfig, 'idleTtlSeconds'>): number {
  return (config.idleTtlSeconds ?? deploymentTtlSeconds(env)) * 1000
}

/**
 * When the expiry alarm should move after activity at `nowMs`: it must stay at or after
 * `nowMs + ttlMs` (never early), and is moved at most once per slack (min(1 s, ttl / 100)), so a
 * 10 Hz control loop does not write the alarm on every step.
 * @param currentMs the alarm now set (ms since the epoch), or null
 * @returns the new alarm time, or null to leave it
 */
export function nextAlarm(nowMs: number, ttlMs: number, currentMs: number | null): number | null {
  if (ttlMs <= 0) return null
  const slackMs = Math.min(1000, ttlMs / 100)
  if (currentMs !== null && currentMs >= nowMs + ttlMs) return null
  return nowMs + ttlMs + slackMs
}

/** Most snapshots a session may hold (`MAX_SNAPSHOTS_PER_SESSION`). */
export function maxSnapshots(env: Env): number {
  return intVar(env.MAX_SNAPSHOTS_PER_SESSION, DEFAULT_MAX_SNAPSHOTS)
}

/** @throws StepkvError `snapshot_limit` (409) when `count` snapshots already fill the limit */
export function checkSnapshotRoom(count: number, limit: number): void {
  if (count >= limit)
    throw new StepkvError('snapshot_limit', 409, `the session holds ${count} snapshots, its limit is ${limit}: delete one first`, { snapshots: count, limit })
}

/** The default snapshot name of a state with ETag `"<seq>.<generation>"`: `seq-<seq>.<generation>`. */
export function defaultSnapshotName(etag: string): string {
  return `seq-${etag.replaceAll('"', '')}`
}

/** Policies that keep a running score in `LayerMemory.scores` (H2O/A2SF). */
const SCORING = new Set(['h2o'])

/**
 * The memory a session continues with after its policy changes from `from` to `to`, or a 409.
 * Allowed: any carried-KV policy to any other (full, window, SnapKV, H2O, GUI-KV; a new budget is
 * a parameter), TempoFit to TempoFit (another bank size). The memory is kept as it is: a smaller
 * budget applies at the next step's update (until then it may hold more tokens than the budget).
 * Running H2O scores are dropped when the new policy does not keep them (H2O starts them at 0).
 * @throws StepkvError `policy_incompatible` (409) between a carried KV cache and a TempoFit bank
 *   (different tensors: the bank holds pre-RoPE K/V of the memory layers only)
 */
export function reconfiguredMemory(memory: SessionMemory, from: Policy, to: Policy): SessionMemory {
  const kindFrom = from.memory ?? 'carried'
  const kindTo = to.memory ?? 'carried'
  if (kindFrom !== kindTo)
    throw new StepkvError(
      'policy_incompatible',
      409,
      `policy '${to.name}' keeps a ${kindTo === 'tempo' ? 'TempoFit bank' : 'carried KV cache'}, this session's memory is a ${kindFrom === 'tempo' ? 'TempoFit bank' : 'carried KV cache'}: the memory cannot be converted; create or fork a session with the new policy and a fresh memory`,
      { from: from.name, to: to.name },
    )
  if (SCORING.has(to.name) || !memory.layers.some((l) => l.scores)) return memory
  return { ...memory, layers: memory.layers.map(({ scores: _dropped, ...layer }) => layer) }
}
