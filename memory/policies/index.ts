/**
 * @module Policy registry: name → factory. Other folders create policies only through here.
 */
import { PolicyConfigError } from '../errors.ts'
import type { Policy } from '../types.ts'
import { fullPolicy } from './full.ts'
import { windowPolicy } from './window.ts'
import { tempofitPolicy } from './tempofit.ts'
import { snapKVPolicy } from './snapkv.ts'
import { h2oPolicy } from './h2o.ts'
import { guiKVPolicy } from './guikv.ts'

const FACTORIES: Readonly<Record<string, (params: unknown) => Policy>> = {
  full: fullPolicy,
  window: windowPolicy,
  tempofit: tempofitPolicy,
  snapkv: snapKVPolicy,
  h2o: h2oPolicy,
  guikv: guiKVPolicy,
}

/** Names `createPolicy` accepts. */
export const POLICY_NAMES: readonly string[] = Object.freeze(Object.keys(FACTORIES))

/**
 * Create a policy by name, validating its parameters once.
 * @param name one of `POLICY_NAMES`
 * @param params the policy's parameters (a plain object; undefined = defaults)
 * @throws PolicyConfigError for an unknown name (listing the known ones) or a bad parameter
 */
export function createPolicy(name: string, params: unknown): Policy {
  if (!Object.hasOwn(FACTORIES, name)) {
    throw new PolicyConfigError(`unknown policy '${name}' (known: ${POLICY_NAMES.join(', ')})`, {
      policy: name,
      known: [...POLICY_NAMES],
    })
  }
  return FACTORIES[name](params)
}

export { fullPolicy } from './full.ts'
export { windowPolicy, windowRows, type WindowOptions } from './window.ts'
export { keepMasked, keepRows, keepTopScores, topScoreRows } from './select.ts'
export { isPinned, keptTokens, maxPinnedRows } from './pins.ts'
export { snapKVPolicy, snapKVScores, avgPoolSame, type SnapKVOptions } from './snapkv.ts'
export { h2oPolicy, accumulateScores, type H2OOptions } from './h2o.ts'
export {
  guiKVPolicy,
  guiKVScores,
  spatialSaliency,
  temporalResiduals,
  type GUIKVOptions,
  type GUIKVParams,
} from './guikv.ts'
