/**
 * The fidelity sweep's row list and `--only` filter: the KIVI R = 0 rows are labelled and stored as
 * R = 0 (one also with `tail: 'quantized'`; the default rows keep KIVI's own defaults), and `--only` keeps exactly the rows whose
 * label contains a part, refusing empty parts and parts that match nothing.
 */
import { describe, expect, it } from 'vitest'
import { configLabel, onlyConfigs, storageOf, sweepConfigs, withOverrides } from '../../bench/sweep.ts'

const rows = sweepConfigs('m-carried', 'm-tempo', 80)

describe('sweepConfigs', () => {
  it('budgets are 10 % and 25 % of an 8-frame prompt, and the R = 0 rows are the only ones with a residual', () => {
    expect(rows.filter((r) => r.policy === 'guikv').map((r) => r.budgetTokens)).toEqual([64, 64, 160, 160])
    const r0 = rows.filter((r) => r.residualTokens !== undefined)
    expect(r0.map(configLabel)).toEqual(['full kivi4 r0 (m-carried)', 'full kivi4 r0 tail (m-carried)'])
    expect(storageOf(r0[0].bits, r0[0].residualTokens)).toEqual({ dtype: 'kivi', kivi: { bits: 4, residualTokens: 0 } })
    expect(storageOf(r0[1].bits, r0[1].residualTokens, r0[1].tail)).toEqual({ dtype: 'kivi', kivi: { bits: 4, residualTokens: 0, tail: 'quantized' } })
    expect(storageOf(4)).toEqual({ dtype: 'kivi', kivi: { bits: 4 } })
    expect(storageOf(32)).toEqual({ dtype: 'float32' })
  })
})

describe('onlyConfigs', () => {
  it('keeps every row without --only, and the matching rows in sweep order with it', () => {
    expect(onlyConfigs(rows, undefined)).toBe(rows)
    expect(onlyConfigs(rows, 'kivi4 r0').map(configLabel)).toEqual(['full kivi4 r0 (m-carried)', 'full kivi4 r0 tail (m-carried)'])
    expect(onlyConfigs(rows, 'tempofit, memoryless').map(configLabel)).toEqual([
      'memoryless (m-carried)',
      'tempofit (m-tempo)',
      'tempofit kivi4 (m-tempo)',
    ])
  })

  it('refuses an empty --only, an empty part and a part that matches nothing, naming the labels', () => {
    expect(() => onlyConfigs(rows, '')).toThrow(/empty label part/)
    expect(() => onlyConfigs(rows, 'guikv,')).toThrow(/empty label part/)
    expect(() => onlyConfigs(rows, 'kivi4 r0,nomatch')).toThrow(/'nomatch' matches no configuration.*full kivi4 r0 \(m-carried\)/)
  })
})

describe('withOverrides (--set)', () => {
  it('sets the parameter on every row of that policy only, and shows it in the label', () => {
    const set = withOverrides(rows, 'guikv.subspaceRank=8')
    const guikv = set.filter((r) => r.policy === 'guikv')
    expect(guikv).toHaveLength(4)
    for (const r of guikv) expect(r.params).toMatchObject({ subspaceRank: 8, budgetTokens: r.budgetTokens })
    expect(configLabel(guikv[0])).toBe('guikv 64 subspaceRank=8 (m-carried)')
    expect(set.filter((r) => r.policy !== 'guikv')).toEqual(rows.filter((r) => r.policy !== 'guikv'))
    expect(withOverrides(rows, undefined)).toBe(rows)
  })

  it('refuses a malformed part or a policy the sweep does not run', () => {
    expect(() => withOverrides(rows, 'guikv.subspaceRank')).toThrow(/policy\.param=number/)
    expect(() => withOverrides(rows, 'nope.x=1')).toThrow(/no row of the sweep uses policy 'nope'/)
  })
})
