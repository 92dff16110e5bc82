/**
 * @module onnxruntime-web (wasm backend) for Node: the bundle build finds its .wasm beside itself.
 */
import * as ort from 'onnxruntime-web/wasm'

/** The ORT module type shared by the Node and workerd loaders. */
export type Ort = typeof ort

let configured = false

/** Returns onnxruntime-web configured for Node: one wasm thread, no proxy worker. */
export function ortForNode(): Ort {
  if (!configured) {
    ort.env.wasm.numThreads = 1
    ort.env.wasm.proxy = false
    configured = true
  }
  return ort
}
