/**
 * @module Charts for bench results: a Vega-Lite spec rendered to SVG headless (vega's `toSVG`).
 */
import { writeFileSync } from 'node:fs'
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'

/** Renders a Vega-Lite spec to an SVG file. */
export async function writeSvg(spec: TopLevelSpec, file: string): Promise<void> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' })
  writeFileSync(file, await view.toSVG())
  view.finalize()
}
