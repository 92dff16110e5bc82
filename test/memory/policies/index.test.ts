import { describe, expect, it } from 'vitest'
import { PolicyConfigError } from '../../../memory/errors.ts'
import { createPolicy, POLICY_NAMES } from '../../../memory/policies/index.ts'
import { makeMemory } from '../fixtures.ts'

describe('policy registry', () => {
  it('lists and creates the known policies', () => {
    // other policies may register too: check ours are there, in registration order
    expect(POLICY_NAMES.slice(0, 2)).toEqual(['full', 'window'])
    expect(POLICY_NAMES).toEqual(expect.arrayContaining(['snapkv', 'h2o', 'guikv']))
    expect(createPolicy('window', { sinkTokens: 1, recentTokens: 2 })).toMatchObject({
      name: 'window',
      params: { sinkTokens: 1, recentTokens: 2 },
    })
    expect(createPolicy('window', undefined).params).toEqual({ sinkTokens: 4, recentTokens: 252 })
  })

  it('creates the scoring policies with their parameters', () => {
    expect(createPolicy('snapkv', { budgetTokens: 64 })).toMatchObject({
      name: 'snapkv',
      params: { budgetTokens: 64, observationWindow: 32, kernelSize: 5, sinkTokens: 0 },
      observationWindow: 32,
      requires: ['attnWindow'],
    })
    expect(createPolicy('h2o', { budgetTokens: 64, forgetting: 0.9 })).toMatchObject({
      name: 'h2o',
      params: { budgetTokens: 64, recentTokens: 32, forgetting: 0.9 },
      requires: ['attnTotal'],
    })
    expect(createPolicy('guikv', undefined)).toMatchObject({
      name: 'guikv',
      observationWindow: 8,
      requires: ['attnWindow', 'hiddenNorm'],
    })
    expect(() => createPolicy('snapkv', { kernelSize: 4 })).toThrow(PolicyConfigError)
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
    expect(run).toThrow(`unknown policy 'snapkv2' (known: ${POLICY_NAMES.join(', ')})`)
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
