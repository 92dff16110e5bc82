/**
 * @module The bench's models in Node: onnxruntime-web (wasm, one thread) over `models/<id>/`.
 */
import { adapterFor } from '../agents/index.ts'
import { nodeEncoderSource, nodeModelSource } from '../gpu/node-models.ts'
import { ortForNode } from '../gpu/ort-node.ts'
import { ModelRuntime } from '../gpu/session.ts'
import type { StepDeps } from './history-core.ts'

/** Node's runtime and adapter per model id (ORT sessions are created once per process). */
export function nodeDeps(): StepDeps {
  return {
    runtime: (model) => ModelRuntime.for(ortForNode(), nodeModelSource(model)),
    adapter: (model) => adapterFor(nodeModelSource(model).manifest, 1 << 20, ModelRuntime.for(ortForNode(), nodeEncoderSource(model))),
  }
}
