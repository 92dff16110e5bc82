/**
 * @module The client's exceptions: every problem+json reply (RFC 9457) becomes a `StepkvProblem`
 * subclass chosen by status, carrying the stable `code`; transport failures are `StepkvTimeout`
 * (no reply within the timeout) and `StepkvNetworkError` (no reply at all).
 */

/** A problem+json body as the server sends it (README, Error codes). */
export interface Problem {
  type: string
  title: string
  status: number
  /** Stable error code, e.g. `seq_conflict`, `invalid_request`, `rate_limited`. */
  code: string
  detail: string
  requestId?: string
  /** Extension members (e.g. `errors[]` for `invalid_request`, `etag`/`seq` for 412). */
  [extension: string]: unknown
}

/** Base of every error the client throws. */
export class StepkvClientError extends Error {
  override name = 'StepkvClientError'
}

/** The server answered with a problem. `problem` is the whole body. */
export class StepkvProblem extends StepkvClientError {
  override name = 'StepkvProblem'
  readonly status: number
  readonly code: string
  readonly requestId?: string
  readonly problem: Problem
  constructor(problem: Problem) {
    super(`HTTP ${problem.status} ${problem.code}: ${problem.detail}`)
    this.problem = problem
    this.status = problem.status
    this.code = problem.code
    this.requestId = problem.requestId
  }
}

/** 400: the request (schema, observation, policy, storage options…) is invalid; `errors` names fields. */
export class InvalidRequest extends StepkvProblem {
  override name = 'InvalidRequest'
  /** For `invalid_request`: each failing field path and message. */
  get errors(): { path: string; message: string }[] {
    return (this.problem.errors as { path: string; message: string }[] | undefined) ?? []
  }
}
/** 401: missing or unknown API key. */
export class Unauthorized extends StepkvProblem {
  override name = 'Unauthorized'
}
/** 404: unknown session (or another tenant's), model, snapshot or route. */
export class NotFound extends StepkvProblem {
  override name = 'NotFound'
}
/** 409: `seq_conflict` (expected `expectedSeq`), `policy_incompatible`, `snapshot_limit`… */
export class Conflict extends StepkvProblem {
  override name = 'Conflict'
  /** For `seq_conflict`: the session's last successful seq. */
  get lastSeq(): number | undefined {
    return this.problem.lastSeq as number | undefined
  }
}
/** 412 / 428: the If-Match precondition failed (the session moved on: `etag`, `seq`) or is missing. */
export class PreconditionFailed extends StepkvProblem {
  override name = 'PreconditionFailed'
  /** The session's current ETag (412). */
  get etag(): string | undefined {
    return this.problem.etag as string | undefined
  }
}
/** 413: body, tokens per step or imported memory over a limit. */
export class TooLarge extends StepkvProblem {
  override name = 'TooLarge'
}
/** 422: the memory blob or the step's result was refused (`memory_*`, `model_mismatch`, `non_finite`…). */
export class Unprocessable extends StepkvProblem {
  override name = 'Unprocessable'
}
/** 429: `rate_limited` (retry after `retryAfterSeconds`) or `session_limit` (delete a session). */
export class RateLimited extends StepkvProblem {
  override name = 'RateLimited'
  /** From the Retry-After header (s); undefined for `session_limit`. */
  retryAfterSeconds?: number
}
/** 5xx: a server-side failure (`internal`: the `requestId` finds it in the logs) or unavailability. */
export class ServerError extends StepkvProblem {
  override name = 'ServerError'
}

/** No reply within the timeout (ms). The request may still have run: retry with the same seq. */
export class StepkvTimeout extends StepkvClientError {
  override name = 'StepkvTimeout'
  readonly timeoutMs: number
  constructor(timeoutMs: number, what: string) {
    super(`${what}: no reply within ${timeoutMs} ms`)
    this.timeoutMs = timeoutMs
  }
}

/** The connection failed (refused, reset, DNS…); `cause` is the fetch error. */
export class StepkvNetworkError extends StepkvClientError {
  override name = 'StepkvNetworkError'
  constructor(what: string, cause: unknown) {
    super(`${what}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
  }
}

const BY_STATUS: Record<number, new (p: Problem) => StepkvProblem> = {
  400: InvalidRequest,
  401: Unauthorized,
  404: NotFound,
  409: Conflict,
  412: PreconditionFailed,
  413: TooLarge,
  415: InvalidRequest,
  422: Unprocessable,
  428: PreconditionFailed,
  429: RateLimited,
}

/**
 * The typed exception of a problem reply.
 * @param problem the parsed body; a reply that is not problem+json is wrapped with code `http_<status>`
 * @param retryAfter the Retry-After header (seconds), if any
 */
export function problemError(problem: Problem, retryAfter?: string | null): StepkvProblem {
  const Class = BY_STATUS[problem.status] ?? (problem.status >= 500 ? ServerError : StepkvProblem)
  const e = new Class(problem)
  if (e instanceof RateLimited && retryAfter && Number.isFinite(Number(retryAfter))) e.retryAfterSeconds = Number(retryAfter)
  return e
}
