/**
 * H2O / A2SF: running scores over 3 (then 4) steps through `appendPrefix`, worked by hand, with
 * and without forgetting.
 */
import { describe, expect, it } from 'vitest'
import { ModelMismatchError, PolicyConfigError } from '../../../memory/errors.ts'
import { h2oPolicy } from '../../../memory/policies/h2o.ts'
import { appendPrefix, emptyMemory } from '../../../memory/session.ts'
import type { Policy, SessionMemory } from '../../../memory/types.ts'

const kvHeads = 2
/** attnTotal per step, `[head][row]` over the grown memory's rows. */
const ATTN = [
  [
    [1, 2],
    [3, 0],
  ],
  [
    [1, 0, 3, 1],
    [0, 0, 1, 1],
  ],
  [
    [2, 1, 0.5, 1, 4, 4],
    [0, 0, 1.25, 0.5, 1, 1],
  ],
]

/** Append S tokens (key = value = position, headDim 1) and run the policy. */
function step(policy: Policy, mem: SessionMemory, attn: number[][], S: number): SessionMemory {
  const P = mem.tokens
  const positions = Int32Array.from({ length: S }, (_, i) => mem.nextPosition + i)
  const key = new Float32Array(kvHeads * (P + S))
  for (let h = 0; h < kvHeads; h++) {
    key.set(mem.layers[0].keys.subarray(h * P, (h + 1) * P), h * (P + S))
    key.set(positions, h * (P + S) + P)
  }
  const grown = appendPrefix(mem, [{ key, value: key.slice() }], {
    seq: mem.seq + 1,
    positions,
    kinds: new Uint8Array(S),
  })
  const attnTotal = [new Float32Array(attn.flat())]
  return policy.update(grown, { seq: grown.seq, prefixTokens: S, attnTotal })
}

const perHead = (mem: SessionMemory, part: 'positions' | 'scores') =>
  [0, 1].map((h) => [...mem.layers[0][part]!.subarray(h * mem.tokens, (h + 1) * mem.tokens)])

function run(policy: Policy, steps: number): SessionMemory[] {
  let mem = emptyMemory({
    model: { id: 'm', sha256: 'a'.repeat(64) },
    layers: 1,
    kvHeads,
    headDim: 1,
  })
  const out: SessionMemory[] = []
  for (let s = 0; s < steps; s++) {
    mem =
      s < 3
        ? step(policy, mem, ATTN[s], 2)
        : step(
            policy,
            mem,
            [
              [0, 0, 0, 0, 0],
              [0, 0, 0, 0, 0],
            ],
            1,
          )
    out.push(mem)
  }
  return out
}

describe('h2o', () => {
  it('accumulates attention over steps (forgetting 1 = plain H2O)', () => {
    // h0: [1, 2] → [1+1, 2+0, 3, 1] → [2+2, 2+1, 3+0.5, 1+1, 4, 4]
    // h1: [3, 0] → [3, 0, 1, 1] → [3, 0, 1+1.25, 1+0.5, 1, 1]
    const [s1, s2, s3] = run(h2oPolicy({ budgetTokens: 6 }), 3)
    expect(perHead(s1, 'scores')).toEqual([
      [1, 2],
      [3, 0],
    ])
    expect(perHead(s2, 'scores')).toEqual([
      [2, 2, 3, 1],
      [3, 0, 1, 1],
    ])
    expect(perHead(s3, 'scores')).toEqual([
      [4, 3, 3.5, 2, 4, 4],
      [3, 0, 2.25, 1.5, 1, 1],
    ])
  })

  it('decays carried scores once per step with a forgetting factor (A2SF)', () => {
    // forgetting 0.5 — h0: [1, 2] → [0.5+1, 1+0, 3, 1] → [0.75+2, 0.5+1, 1.5+0.5, 0.5+1, 4, 4]
    // h1: [3, 0] → [1.5, 0, 1, 1] → [0.75, 0, 0.5+1.25, 0.5+0.5, 1, 1]
    const [, s2, s3] = run(h2oPolicy({ budgetTokens: 6, forgetting: 0.5 }), 3)
    expect(perHead(s2, 'scores')).toEqual([
      [1.5, 1, 3, 1],
      [1.5, 0, 1, 1],
    ])
    expect(perHead(s3, 'scores')).toEqual([
      [2.75, 1.5, 2, 1.5, 4, 4],
      [0.75, 0, 1.75, 1, 1, 1],
    ])
  })

  it('keeps heavy hitters + recent tokens and carries their scores (budget 4, recent 2)', () => {
    // step 3, forgetting 1: recent = positions 4, 5; heavy 2 of rows 0–3 —
    //   h0 [4, 3, 3.5, 2] → 0, 2; h1 [3, 0, 2.25, 1.5] → 0, 2
    // step 4 (1 token, no attention): h0 scores [4, 3.5, 4, 4, 0] at positions [0, 2, 4, 5, 6];
    //   recent = 5, 6; heavy 2 of {0: 4, 2: 3.5, 4: 4} → 0, 4; h1 [3, 2.25, 1, 1, 0] → 0, 2
    const [, , s3, s4] = run(h2oPolicy({ budgetTokens: 4 }), 4)
    expect(perHead(s3, 'positions')).toEqual([
      [0, 2, 4, 5],
      [0, 2, 4, 5],
    ])
    expect(perHead(s3, 'scores')).toEqual([
      [4, 3.5, 4, 4],
      [3, 2.25, 1, 1],
    ])
    expect(perHead(s4, 'positions')).toEqual([
      [0, 4, 5, 6],
      [0, 2, 5, 6],
    ])
    expect(perHead(s4, 'scores')).toEqual([
      [4, 4, 4, 0],
      [3, 2.25, 1, 0],
    ])
    expect([s4.nextPosition, s4.seq, s4.tokens]).toEqual([7, 4, 4])
  })

  it('forgetting changes which heavy hitters survive', () => {
    // forgetting 0.5, step 3: h0 [2.75, 1.5, 2, 1.5] → 0, 2; h1 [0.75, 0, 1.75, 1] → 2, 3
    // step 4: h1 scores [0.875, 0.5, 0.5, 0.5, 0] at positions [2, 3, 4, 5, 6]; recent 5, 6;
    //   heavy: 2 (0.875), then 3 and 4 tie at 0.5 → the newer, 4
    const [, , s3, s4] = run(h2oPolicy({ budgetTokens: 4, forgetting: 0.5 }), 4)
    expect(perHead(s3, 'positions')).toEqual([
      [0, 2, 4, 5],
      [2, 3, 4, 5],
    ])
    expect(perHead(s3, 'scores')).toEqual([
      [2.75, 2, 4, 4],
      [1.75, 1, 1, 1],
    ])
    expect(perHead(s4, 'positions')[1]).toEqual([2, 4, 5, 6])
    expect(perHead(s4, 'scores')[1]).toEqual([0.875, 0.5, 0.5, 0])
  })

  it('has the documented defaults, needs attnTotal and refuses bad parameters', () => {
    const policy = h2oPolicy()
    expect(policy.params).toEqual({ budgetTokens: 256, recentTokens: 128, forgetting: 1 })
    expect(h2oPolicy({ budgetTokens: 9 }).params.recentTokens).toBe(4)
    expect(h2oPolicy({ budgetTokens: 9, recentTokens: 0 }).params.recentTokens).toBe(0)
    expect(policy.requires).toEqual(['attnTotal'])
    expect(() => h2oPolicy({ budgetTokens: 8, recentTokens: 9 })).toThrow(
      "parameter 'recentTokens' (9) must not exceed budgetTokens (8)",
    )
    expect(() => h2oPolicy({ forgetting: 1.5 })).toThrow(
      "h2o policy parameter 'forgetting' must be a number in 0…1, got 1.5",
    )
    expect(() => h2oPolicy({ forgetting: NaN })).toThrow(PolicyConfigError)
    expect(() => h2oPolicy({ heavyTokens: 3 })).toThrow(PolicyConfigError)
    const mem = emptyMemory({ model: { id: 'm', sha256: 's' }, layers: 1, kvHeads, headDim: 1 })
    expect(() => policy.update(mem, { seq: 1, prefixTokens: 0 })).toThrow(ModelMismatchError)
  })
})
