import { describe, expect, it } from 'vitest'
import { PolicyConfigError } from '../../../memory/errors.ts'
import { createPolicy, POLICY_NAMES } from '../../../memory/policies/index.ts'
import { makeMemory } from '../fixtures.ts'

describe('policy registry', () => {
  it('lists and creates the known policies', () => {
    expect(POLICY_NAMES).toEqual(['full', 'window'])
    expect(createPolicy('window', { sinkTokens: 1, recentTokens: 2 })).toMatchObject({
      name: 'window',
      params: { sinkTokens: 1, recentTokens: 2 },
    })
    expect(createPolicy('window', undefined).params).toEqual({ sinkTokens: 4, recentTokens: 252 })
  })

  it('full keeps everything', () => {
    const mem = makeMemory({ tokens: 300 })
    const full = createPolicy('full', {})
    expect(full.params).toEqual({})
    expect(full.update(mem, { seq: 76, prefixTokens: 4 })).toBe(mem)
  })

  it('refuses unknown names, listing the known ones', () => {
    const run = () => createPolicy('snapkv2', {})
    expect(run).toThrow(PolicyConfigError)
    expect(run).toThrow("unknown policy 'snapkv2' (known: full, window)")
    expect(() => createPolicy('toString', {})).toThrow(PolicyConfigError)
  })

  it('refuses parameters that are not a plain object, naming bad ones', () => {
    expect(() => createPolicy('full', { budgetTokens: 8 })).toThrow(
      "full policy has no parameter 'budgetTokens' (known: none)",
    )
    for (const params of [[1, 2], 'sinkTokens=4', 4, new Map()]) {
      expect(() => createPolicy('window', params)).toThrow(
        'window policy parameters must be a plain object',
      )
    }
    try {
      createPolicy('window', { sinkTokens: Infinity })
    } catch (error) {
      expect(error).toBeInstanceOf(PolicyConfigError)
      expect((error as PolicyConfigError).details).toMatchObject({
        policy: 'window',
        parameter: 'sinkTokens',
      })
    }
  })
})
