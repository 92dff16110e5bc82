/**
 * @module The memory inspector page: one self-contained HTML document with server-side inline SVG
 * (no script, no external resource; the reply's CSP forbids both). Charts: tokens kept per layer
 * over steps, tokens kept per frame and layer over steps, tokens kept now per frame and layer, and
 * for models with cameras the kept visual tokens of the newest frames as heat maps over each
 * camera's patch grid, one per stored layer (`<rect class="patch" data-frame data-camera data-layer data-patch
 * data-heads>`, so tests and tools can read the cells back).
 */
import type { HeatMap, ViewModel } from './view-data.ts'
import type { ViewStep } from './view-history.ts'

/** What the page says about the session besides its memory. */
export interface ViewHeader {
  id: string
  model: string
  policy: { name: string; params: Record<string, unknown> }
  memoryDtype: string
  seq: number
  memoryBytes: number
  /** When the link expires (ISO 8601). */
  expiresAt: string
  /** Observations the session retains (`retainFrames`; 0 = none, so no screenshots). */
  retainFrames: number
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2']
/** Steps drawn in the frame × step matrix (the newest). */
const MATRIX_STEPS = 64
/** Heat-map cell size, px (16: a GUI screenshot's patches at 1:1, 128×96 px). */
const CELL_PX = 16

/** HTML-escapes text and attribute values. */
export function esc(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`)
}

/** Line chart of rows kept per head in each stored layer after each step. */
function layersOverSteps(history: ViewStep[], layerIds: number[]): string {
  if (history.length === 0)
    return '<p class="empty">No steps on this trajectory yet: a reset, rollback, fork, import or policy change starts a new one (earlier steps no longer describe the memory).</p>'
  const w = 640, h = 200, left = 48, bottom = 24, top = 8, right = 12
  const seqs = history.map((s) => s.seq)
  const lo = seqs[0], hi = Math.max(seqs[seqs.length - 1], lo + 1)
  const maxTokens = Math.max(1, ...history.flatMap((s) => s.tokensPerLayer))
  const x = (seq: number) => left + ((seq - lo) / (hi - lo)) * (w - left - right)
  const y = (n: number) => top + (1 - n / maxTokens) * (h - top - bottom)
  const lines = layerIds.map((layer, l) => {
    const points = history.map((s) => `${x(s.seq).toFixed(1)},${y(s.tokensPerLayer[l] ?? 0).toFixed(1)}`).join(' ')
    return `<polyline class="layer-line" data-layer="${layer}" fill="none" stroke="${PALETTE[l % PALETTE.length]}" stroke-width="${2 + (layerIds.length - l) * 0.5}" stroke-opacity="0.8" points="${points}"/>`
  })
  const axes = [
    `<line x1="${left}" y1="${h - bottom}" x2="${w - right}" y2="${h - bottom}" stroke="#888"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${h - bottom}" stroke="#888"/>`,
    `<text x="${left - 4}" y="${y(maxTokens) + 4}" text-anchor="end">${maxTokens}</text>`,
    `<text x="${left - 4}" y="${h - bottom}" text-anchor="end">0</text>`,
    `<text x="${left}" y="${h - 6}">step ${lo}</text>`,
    `<text x="${w - right}" y="${h - 6}" text-anchor="end">step ${seqs[seqs.length - 1]}</text>`,
  ]
  const legend = layerIds.map((layer, l) => `<span class="key" style="background:${PALETTE[l % PALETTE.length]}"></span>layer ${layer}`).join(' ')
  return `<svg id="layers-over-steps" width="${w}" height="${h}" role="img" aria-label="tokens kept per layer over steps">${axes.join('')}${lines.join('')}</svg><p class="legend">${legend} (rows kept per KV head)</p>`
}

/** Small multiples, one per stored layer: rows = frames (newest on top), columns = steps; shade =
 * that frame's tokens kept in that layer after that step (rows per KV head). */
function framesOverSteps(history: ViewStep[], kvHeads: number, layerIds: number[]): string {
  const steps = history.slice(-MATRIX_STEPS)
  if (steps.length === 0) return ''
  const frames = [...new Set(steps.flatMap((s) => s.frames.map((r) => r[0])))].sort((a, b) => b - a)
  const max = Math.max(1, ...steps.flatMap((s) => s.frames.flatMap((r) => r.slice(1).map((n) => n / kvHeads))))
  const cw = Math.max(3, Math.min(12, Math.floor(300 / steps.length))), ch = Math.max(3, Math.min(10, Math.floor(240 / Math.max(1, frames.length))))
  const left = 58, top = 4
  const w = left + steps.length * cw + 8, h = top + frames.length * ch + 20
  const figures = layerIds.map((layer, l) => {
    const cells: string[] = []
    steps.forEach((s, c) => {
      const byFrame = new Map(s.frames.map((r) => [r[0], r[1 + l] / kvHeads]))
      frames.forEach((f, r) => {
        const n = byFrame.get(f)
        if (!n) return
        cells.push(`<rect class="frame-cell" data-layer="${layer}" data-step="${s.seq}" data-frame="${f}" data-tokens="${+n.toFixed(2)}" x="${left + c * cw}" y="${top + r * ch}" width="${cw - 1}" height="${ch - 1}" fill="#1f77b4" fill-opacity="${(0.15 + 0.85 * (n / max)).toFixed(3)}"><title>layer ${layer}, frame ${f} after step ${s.seq}: ${+n.toFixed(2)} rows per KV head</title></rect>`)
      })
    })
    const labels = [`<text x="${left - 4}" y="${top + ch}" text-anchor="end">frame ${frames[0]}</text>`, `<text x="${left - 4}" y="${top + frames.length * ch}" text-anchor="end">frame ${frames[frames.length - 1]}</text>`, `<text x="${left}" y="${h - 4}">step ${steps[0].seq} → ${steps[steps.length - 1].seq}</text>`]
    return `<figure class="matrix"><svg class="frames-over-steps" data-layer="${layer}" width="${w}" height="${h}" role="img" aria-label="layer ${layer}: tokens kept per frame over steps">${labels.join('')}${cells.join('')}</svg><figcaption>layer ${layer}</figcaption></figure>`
  })
  return `<h2>Tokens kept per frame and layer over steps</h2><div id="frames-over-steps">${figures.join('')}</div><p class="legend">Darker = more of that frame's tokens kept in that layer after that step (rows per KV head, max ${+max.toFixed(2)}); a blank cell: none kept. The last ${MATRIX_STEPS} steps.</p>`
}

/** Table of tokens kept now per frame (rows, newest first) and stored layer (columns), per head. */
function framesTable(frames: number[][], layerIds: number[], kvHeads: number): string {
  if (frames.length === 0) return '<p class="empty">The memory holds no tokens.</p>'
  const head = `<tr><th>frame (step)</th>${layerIds.map((l) => `<th>layer ${l}</th>`).join('')}</tr>`
  const rows = frames.map((r) => `<tr data-frame="${r[0]}"><td>${r[0]}</td>${r.slice(1).map((n) => `<td>${+(n / kvHeads).toFixed(2)}</td>`).join('')}</tr>`)
  return `<table id="frames-now">${head}${rows.join('')}</table>`
}

/** One heat map: a camera's patch grid for one stored layer; opacity = heads keeping the patch / kvHeads. */
function heatMapSvg(map: HeatMap, layer: { layer: number; heads: number[] }, kvHeads: number): string {
  const [rows, cols] = map.grid
  const cells = layer.heads.map((n, patch) => {
    const x = (patch % cols) * CELL_PX, y = Math.floor(patch / cols) * CELL_PX
    const fill = n === 0 ? '#eeeeee' : '#d62728'
    // Over a screenshot: evicted patches greyed out, kept ones tinted so the screen shows through.
    const opacity = map.screenshot ? (n === 0 ? 0.75 : 0.15 + 0.35 * (n / kvHeads)) : n === 0 ? 1 : 0.3 + 0.7 * (n / kvHeads)
    return `<rect class="patch" data-frame="${map.frame}" data-camera="${esc(map.camera)}" data-layer="${layer.layer}" data-patch="${patch}" data-heads="${n}" x="${x}" y="${y}" width="${CELL_PX - 1}" height="${CELL_PX - 1}" fill="${fill}" fill-opacity="${opacity.toFixed(3)}"><title>patch ${patch} (row ${Math.floor(patch / cols)}, col ${patch % cols}): kept by ${n}/${kvHeads} heads</title></rect>`
  })
  const w = cols * CELL_PX, h = rows * CELL_PX
  const screen = map.screenshot ? `<image class="screenshot" href="${esc(map.screenshot)}" x="0" y="0" width="${w}" height="${h}" preserveAspectRatio="none"/>` : ''
  return `<figure class="heatmap"><svg width="${w}" height="${h}" role="img" aria-label="frame ${map.frame} ${esc(map.camera)} layer ${layer.layer}">${screen}${cells.join('')}</svg><figcaption>layer ${layer.layer}</figcaption></figure>`
}

function heatMaps(model: ViewModel, retainFrames: number): string {
  if (model.heatMaps.length === 0) return ''
  const shown = model.heatMaps.filter((m) => m.screenshot).length
  const screens =
    retainFrames === 0
      ? 'Screenshots are not shown: this session retains no observations (create it with <code>retainFrames: N</code> to see them under the grids).'
      : `The session retains its last ${retainFrames} observations: ${shown} of these grids lie over their frame's screenshot (tinted = kept, greyed = evicted)${shown < model.heatMaps.length ? '; the others are of frames no longer retained' : ''}.`
  const blocks = model.heatMaps.map(
    (m) =>
      `<section class="frame" data-frame="${m.frame}" data-camera="${esc(m.camera)}"><h3>frame ${m.frame} · ${esc(m.camera)} (${m.grid[0]}×${m.grid[1]} patches, prefix at position ${m.prefixStart}${m.startInferred ? ', inferred' : ''})</h3>${m.layers.map((l) => heatMapSvg(m, l, model.kvHeads)).join('')}</section>`,
  )
  return `<h2>Kept visual tokens of the newest frames</h2><p class="note">Each grid is a camera's patch grid (row-major, as the encoder emits them); red = the patch's token is kept in that layer, darker = by more of the ${model.kvHeads} KV heads; grey = evicted. ${screens}</p>${blocks.join('')}`
}

/**
 * The inspector page.
 * @returns a complete HTML5 document (UTF-8), safe to serve with `default-src 'none'; style-src 'unsafe-inline'`
 */
export function renderViewPage(header: ViewHeader, model: ViewModel): string {
  const policy = `${header.policy.name} ${JSON.stringify(header.policy.params)}`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="no-referrer">
<title>stepkv · ${esc(header.id)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}svg text{font-size:11px;fill:#444}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}.key{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}.heatmap,.matrix{display:inline-block;margin:4px 12px 4px 0}.matrix figcaption{text-align:center;font-size:12px}.heatmap figcaption{text-align:center;font-size:12px}.note,.legend,.empty{color:#555}dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{font-weight:600}</style>
</head><body>
<h1>Session memory</h1>
<dl id="session"><dt>session</dt><dd>${esc(header.id)}</dd><dt>model</dt><dd>${esc(header.model)}</dd><dt>policy</dt><dd>${esc(policy)}</dd><dt>storage</dt><dd>${esc(header.memoryDtype)}</dd><dt>last step</dt><dd id="seq">${header.seq}</dd><dt>rows per layer and head</dt><dd id="tokens">${model.tokens}</dd><dt>next position</dt><dd>${model.nextPosition}</dd><dt>stored bytes</dt><dd>${header.memoryBytes}</dd><dt>link expires</dt><dd>${esc(header.expiresAt)}</dd></dl>
<h2>Tokens kept per layer over steps</h2>
${layersOverSteps(model.history, model.layerIds)}
${framesOverSteps(model.history, model.kvHeads, model.layerIds)}
<h2>Tokens kept now per frame and layer</h2>
<p class="note">Rows per KV head (a head may keep other tokens than its neighbours; fractions are means over the ${model.kvHeads} heads).</p>
${framesTable(model.frames, model.layerIds, model.kvHeads)}
${heatMaps(model, header.retainFrames)}
</body></html>`
}
