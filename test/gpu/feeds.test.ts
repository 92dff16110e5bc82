/**
 * Feeds are checked against the manifest before `run()`, and each error names the input.
 */
import { describe, expect, it } from 'vitest'
import { checkFeeds, type HostTensor } from '../../gpu/feeds.ts'
import { nodeModelSource } from '../../gpu/node-models.ts'
import { ortForNode } from '../../gpu/ort-node.ts'
import { ModelRuntime } from '../../gpu/session.ts'
import { FeedError } from '../../memory/errors.ts'

const { manifest } = nodeModelSource('tiny-gqa')

function feeds(P: number, S: number): Record<string, HostTensor> {
  const f: Record<string, HostTensor> = {
    input_ids: { dtype: 'int64', dims: [1, S], data: new BigInt64Array(S) },
    position_ids: { dtype: 'int64', dims: [1, S], data: new BigInt64Array(S) },
    attention_mask: { dtype: 'int64', dims: [1, P + S], data: new BigInt64Array(P + S).fill(1n) },
    obs_window: { dtype: 'int64', dims: manifest.inputs.find((i) => i.name === 'obs_window')!.dims.map(() => 1), data: BigInt64Array.of(1n) },
  }
  for (let l = 0; l < manifest.layers; l++)
    for (const kv of ['key', 'value'])
      f[`past_key_values.${l}.${kv}`] = {
        dtype: 'float32',
        dims: [1, manifest.kvHeads, P, manifest.headDim],
        data: new Float32Array(manifest.kvHeads * P * manifest.headDim),
      }
  return f
}

const expectFeedError = (f: Record<string, HostTensor>, pattern: RegExp) => {
  expect(() => checkFeeds(manifest, f)).toThrow(FeedError)
  expect(() => checkFeeds(manifest, f)).toThrow(pattern)
}

describe('checkFeeds', () => {
  it('accepts valid feeds, including a zero-length past', () => {
    expect(() => checkFeeds(manifest, feeds(0, 3))).not.toThrow()
    expect(() => checkFeeds(manifest, feeds(5, 1))).not.toThrow()
  })

  it('names a missing or unknown input', () => {
    const f = feeds(2, 2)
    delete f['past_key_values.3.value']
    expectFeedError(f, /missing model input 'past_key_values\.3\.value'/)
    expectFeedError({ ...feeds(2, 2), inputs_embeds: feeds(2, 2).position_ids }, /unknown model input 'inputs_embeds'/)
  })

  it('names a wrong dtype, rank, head count or data length', () => {
    const f = feeds(2, 2)
    f.input_ids = { dtype: 'float32', dims: [1, 2], data: new Float32Array(2) }
    expectFeedError(f, /input 'input_ids' has dtype float32, model expects int64/)
    const g = feeds(2, 2)
    g['past_key_values.1.key'] = { dtype: 'float32', dims: [1, 3, 2, 16], data: new Float32Array(96) }
    expectFeedError(g, /input 'past_key_values\.1\.key' dim 1 is 3, model expects 2/)
    const h = feeds(2, 2)
    h.position_ids = { dtype: 'int64', dims: [2], data: new BigInt64Array(2) }
    expectFeedError(h, /input 'position_ids' has rank 1/)
    const k = feeds(2, 2)
    k['past_key_values.0.value'].data = new Float32Array(3)
    expectFeedError(k, /input 'past_key_values\.0\.value' has 3 elements/)
  })

  it('checks symbolic dims across inputs: past lengths agree and total = past + seq', () => {
    const f = feeds(2, 2)
    f['past_key_values.2.key'] = feeds(3, 2)['past_key_values.2.key']
    expectFeedError(f, /past_key_values\.2\.key' dim 2 \('past'\) is 3/)
    const g = feeds(2, 2)
    g.attention_mask = { dtype: 'int64', dims: [1, 5], data: new BigInt64Array(5) }
    expectFeedError(g, /'attention_mask' covers 5 tokens, past \(2\) \+ seq \(2\) = 4/)
  })

  it('runs a valid feed through ORT and refuses a bad one before run()', async () => {
    const rt = ModelRuntime.for(ortForNode(), nodeModelSource('tiny-gqa'))
    const out = await rt.run(feeds(0, 3), ['logits'])
    expect(out.logits.dims).toEqual([1, 3, manifest.vocabSize])
    const bad = feeds(0, 3)
    bad['past_key_values.0.key'].dims = [1, 2, 0, 8]
    await expect(rt.run(bad)).rejects.toThrow(/dim 3 is 8, model expects 16/)
    // The session still works after a refused feed.
    expect((await rt.run(feeds(1, 1), ['logits'])).logits.dims).toEqual([1, 1, manifest.vocabSize])
  })
})
