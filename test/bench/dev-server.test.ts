/**
 * The config that serves a pre-built bundle: main re-pointed, no_bundle set, the module rules
 * replaced, every other table kept (worked on the shape of the repository's wrangler.toml).
 */
import { describe, expect, it } from 'vitest'
import { bundledToml } from '../../bench/dev-server.ts'

const SOURCE = `name = "stepkv"
main = "worker/index.ts"
compatibility_flags = ["nodejs_compat"]

[[durable_objects.bindings]]
name = "SESSIONS"
class_name = "SessionObject"

# ONNX models are bundled as bytes
[[rules]]
type = "Data"
globs = ["**/*.onnx"]
fallthrough = true

[vars]
MAX_PREFIX_TOKENS = "4096"
`

describe('bundledToml', () => {
  it('points main at the bundle, drops the source rules and adds the bundle module rules', () => {
    expect(bundledToml(SOURCE, 'index.js')).toBe(`name = "stepkv"
main = "index.js"
no_bundle = true
compatibility_flags = ["nodejs_compat"]

[[durable_objects.bindings]]
name = "SESSIONS"
class_name = "SessionObject"

# ONNX models are bundled as bytes
[vars]
MAX_PREFIX_TOKENS = "4096"

[[rules]]
type = "ESModule"
globs = ["**/*.js"]

[[rules]]
type = "CompiledWasm"
globs = ["**/*.wasm"]

[[rules]]
type = "Data"
globs = ["**/*.onnx"]
`)
  })

  it('refuses a config without main', () => {
    expect(() => bundledToml('name = "x"\n', 'index.js')).toThrow(/main/)
  })
})
