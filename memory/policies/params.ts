/**
 * @module Policy parameter checking, done once at construction: a plain object of known integer
 * parameters, each with a default and a range. Errors name the policy and the parameter.
 */
import { PolicyConfigError } from '../errors.ts'

/** One integer parameter: its default and inclusive range; `real: true` accepts any finite
 * number in range instead (e.g. a forgetting factor). */
export interface IntParam {
  default: number
  min: number
  max: number
  real?: boolean
}

/** Largest token count a parameter may name (row indices are Int32). */
export const MAX_TOKENS = 2 ** 31 - 1

/**
 * Validate `params` against `spec` and fill in defaults.
 * @param policy the policy name, for messages
 * @param params undefined or a plain object whose keys are all in `spec`
 * @returns every parameter of `spec`, as integers (or finite numbers, if `real`) within range
 * @throws PolicyConfigError naming the bad parameter (unknown key, not an integer, out of range),
 *   or if `params` is not a plain object
 */
export function readIntParams<K extends string>(
  policy: string,
  params: unknown,
  spec: Record<K, IntParam>,
): Record<K, number> {
  if (params === undefined || params === null) params = {}
  if (
    typeof params !== 'object' ||
    Array.isArray(params) ||
    Object.getPrototypeOf(params) !== Object.prototype
  ) {
    throw new PolicyConfigError(`${policy} policy parameters must be a plain object`, { policy })
  }
  const given = params as Record<string, unknown>
  for (const key of Object.keys(given)) {
    if (!Object.hasOwn(spec, key)) {
      const known = Object.keys(spec).join(', ') || 'none'
      throw new PolicyConfigError(`${policy} policy has no parameter '${key}' (known: ${known})`, {
        policy,
        parameter: key,
      })
    }
  }
  const out = {} as Record<K, number>
  for (const key of Object.keys(spec) as K[]) {
    const { default: fallback, min, max, real = false } = spec[key]
    const value = given[key] === undefined ? fallback : given[key]
    const typed = real ? Number.isFinite(value) : Number.isInteger(value)
    if (typeof value !== 'number' || !typed || value < min || value > max) {
      const what = real ? 'a number' : 'an integer'
      throw new PolicyConfigError(
        `${policy} policy parameter '${key}' must be ${what} in ${min}…${max}, got ${String(value)}`,
        { policy, parameter: key, value: typeof value === 'number' ? value : String(value) },
      )
    }
    out[key] = value
  }
  return out
}
