/**
 * @module Typed errors shared by every layer of stepkv. Code throws a `StepkvError` subclass with a
 * stable `code` and HTTP `status` before touching stored state; only the Worker's `onError` turns
 * them into problem+json (RFC 9457) responses.
 */

/** Base error: `code` is stable API (clients switch on it), `status` the HTTP status it maps to. */
export class StepkvError extends Error {
  readonly code: string
  readonly status: number
  readonly details: Record<string, unknown>
  constructor(code: string, status: number, message: string, details: Record<string, unknown> = {}) {
    super(message)
    this.name = new.target.name
    this.code = code
    this.status = status
    this.details = details
  }
}

/** The request is malformed or fails its schema (400). */
export class BadRequestError extends StepkvError {
  constructor(message: string, details: Record<string, unknown> = {}, code = 'bad_request') {
    super(code, 400, message, details)
  }
}

/** A memory blob is corrupt, truncated, of an unknown version or fails its CRC (422). */
export class MemoryCodecError extends StepkvError {
  constructor(message: string, details: Record<string, unknown> = {}, code = 'memory_corrupt') {
    super(code, 422, message, details)
  }
}

/** A memory blob or tensor belongs to another model, or its shapes disagree with the model (422). */
export class ModelMismatchError extends StepkvError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('model_mismatch', 422, message, details)
  }
}

/** A model feed disagrees with the model manifest (name, dtype, rank, dims) (400 when it comes
 * from the client, else a bug: the engine checks client input before building feeds). */
export class FeedError extends StepkvError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('invalid_feed', 400, message, details)
  }
}

/** A policy was configured with invalid parameters (400). */
export class PolicyConfigError extends StepkvError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('invalid_policy', 400, message, details)
  }
}

/** No such session for this tenant, or no such model (404). */
export class NotFoundError extends StepkvError {
  constructor(message: string, details: Record<string, unknown> = {}, code = 'not_found') {
    super(code, 404, message, details)
  }
}

/** A step's seq is neither the last successful seq nor last + 1 (409). */
export class SeqConflictError extends StepkvError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('seq_conflict', 409, message, details)
  }
}

/** Missing or wrong bearer token (401). */
export class UnauthorizedError extends StepkvError {
  constructor(message = 'missing or invalid bearer token') {
    super('unauthorized', 401, message)
  }
}

/** A body over the configured limit (413). */
export class PayloadTooLargeError extends StepkvError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('payload_too_large', 413, message, details)
  }
}

/** NaN/Inf in incoming tensors or in what the model produced from this input: never persisted
 * (422, nothing stored; the step's seq is not consumed). */
export class NumericError extends StepkvError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('non_finite', 422, message, details)
  }
}
