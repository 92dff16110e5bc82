/**
 * @module The `full` policy: carry every token (no eviction). The baseline every other policy is
 * measured against; memory and step cost grow with the session.
 */
import type { Policy } from '../types.ts'
import { readIntParams } from './params.ts'

/**
 * Keep the whole KV cache.
 * @param params none (`{}` or undefined)
 * @throws PolicyConfigError if any parameter is given
 */
export function fullPolicy(params: unknown = {}): Policy {
  readIntParams('full', params, {})
  return { name: 'full', params: {}, update: (mem) => mem }
}
