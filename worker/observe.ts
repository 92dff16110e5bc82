/**
 * @module Observability: request ids, structured log lines, per-tenant counters.
 * - A request id on every reply (`x-request-id`): the client's, when it is 1–64 characters of
 *   `[A-Za-z0-9._:-]`, else a fresh UUID; it is in every problem body and log line.
 * - One JSON log line per step (`event: 'step'`) and per import, written by the Durable Object.
 * - Per-tenant counters: one Workers Analytics Engine data point per `/v1` request through the
 *   optional `METRICS` binding (absent → nothing is written: tests, local dev without it). A
 *   failing write never fails the request.
 */

const CLIENT_ID = /^[A-Za-z0-9._:-]{1,64}$/

/** The request id of a request: the client's `x-request-id` if well-formed, else a new UUID. */
export function requestIdOf(header: string | undefined): string {
  return header && CLIENT_ID.test(header) ? header : crypto.randomUUID()
}

/** What a step log line holds (times in ms, sizes in bytes, tokens per layer). */
export interface StepLog {
  requestId: string
  tenant: string
  session: string
  seq: number
  model: string
  policy: string
  /** 'ok', 'replay' (a retried seq answered from storage) or the problem code. */
  outcome: string
  status: number
  prefixTokens?: number
  memoryTokens?: number
  memoryBytes?: number
  timings?: Record<string, number>
  totalMs: number
}

/** Writes one structured log line (`console.log` of a JSON object; Workers Logs indexes it). */
export function logEvent(event: 'step' | 'import', fields: StepLog | Record<string, unknown>): void {
  console.log(JSON.stringify({ level: 'info', event, ...fields }))
}

/** One request, as the per-tenant counter data point records it. */
export interface RequestPoint {
  tenant: string
  /** Route label, e.g. `POST /v1/sessions/:id/steps` (session ids replaced, unmatched paths 'unmatched'). */
  route: string
  status: number
  /** Problem code, or 'ok'. */
  outcome: string
  latencyMs: number
  requestBytes: number
  /** Prefix tokens of a step that ran (0 otherwise). */
  prefixTokens: number
  /** Stored memory bytes after a step or import (0 otherwise). */
  memoryBytes: number
}

/** The route label of a path: session ids → `:id`, capped at 64 characters. */
export function routeLabel(method: string, path: string, matched: boolean): string {
  if (!matched) return 'unmatched'
  return `${method} ${path.replace(/s_[0-9a-f]{32}/g, ':id')}`.slice(0, 64)
}

/**
 * Writes the request's data point: index = tenant (sampling key), blobs = [tenant, route,
 * outcome], doubles = [1, status, latencyMs, requestBytes, prefixTokens, memoryBytes], so
 * `SUM(_sample_interval * double1)` counts requests per tenant, route and outcome.
 * @param metrics the `METRICS` binding, or undefined (no-op)
 */
export function recordRequest(metrics: AnalyticsEngineDataset | undefined, p: RequestPoint): void {
  if (!metrics) return
  try {
    metrics.writeDataPoint({
      indexes: [p.tenant.slice(0, 96)],
      blobs: [p.tenant, p.route, p.outcome],
      doubles: [1, p.status, p.latencyMs, p.requestBytes, p.prefixTokens, p.memoryBytes],
    })
  } catch (e) {
    console.error(JSON.stringify({ level: 'error', msg: `METRICS write failed: ${String(e).slice(0, 200)}` }))
  }
}
