/**
 * @module Errors → problem+json (RFC 9457) with a stable `code`; unknown errors are logged and
 * answered as `internal` with no stack. Also the DO ↔ Worker error envelope: RPC does not keep
 * error classes, so the Durable Object returns `{ ok: false, error }` and the Worker rethrows.
 */
import { StepkvError } from '../memory/errors.ts'

/** The problem+json body. */
export interface Problem {
  type: string
  title: string
  status: number
  code: string
  detail: string
  requestId?: string
  [extension: string]: unknown
}

/** A Durable Object method's result: a value, or a serializable error. */
export type Result<T> = { ok: true; value: T } | { ok: false; error: WireError }

/** A StepkvError as plain data. */
export interface WireError {
  code: string
  status: number
  message: string
  details: Record<string, unknown>
}

/** Runs `fn`, turning a StepkvError into `{ ok: false }` and rethrowing anything else. */
export async function asResult<T>(fn: () => Promise<T> | T): Promise<Result<T>> {
  try {
    return { ok: true, value: await fn() }
  } catch (e) {
    if (e instanceof StepkvError)
      return { ok: false, error: { code: e.code, status: e.status, message: e.message, details: e.details } }
    throw e
  }
}

/** Unwraps a Result, rethrowing its error as a StepkvError. */
export function unwrap<T>(r: Result<T>): T {
  if (r.ok) return r.value
  throw new StepkvError(r.error.code, r.error.status, r.error.message, r.error.details)
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  426: 'Upgrade Required',
  422: 'Unprocessable Content',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
}

/** Whether `e` is the error a Durable Object call throws when the object was reset mid-call
 * (`ctx.abort()`, an exceeded limit, a code update): workerd marks it `durableObjectReset`. The
 * call's writes were not committed unless they were durable before the reset, so it is safe to retry. */
export function isObjectReset(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { durableObjectReset?: unknown }).durableObjectReset === true
}

/** The problem body of an error (StepkvError → its code and details; a Durable Object reset → 503
 * `session_reset` with Retry-After; anything else → internal). */
export function problemOf(e: unknown, requestId?: string): Problem {
  if (isObjectReset(e))
    return problemOf(
      new StepkvError('session_reset', 503, "the session's Durable Object was reset during the request; retry it (a step with the same seq: the stored reply is replayed if the step completed)", { retryAfterSeconds: 1 }),
      requestId,
    )
  if (e instanceof StepkvError)
    return {
      type: `https://stepkv.dev/problems/${e.code}`,
      title: TITLES[e.status] ?? 'Error',
      status: e.status,
      code: e.code,
      detail: e.message,
      requestId,
      ...e.details,
    }
  return {
    type: 'https://stepkv.dev/problems/internal',
    title: TITLES[500],
    status: 500,
    code: 'internal',
    detail: 'internal error; the request id identifies it in the logs',
    requestId,
  }
}
