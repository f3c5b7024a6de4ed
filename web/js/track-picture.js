// A track drawn from its outline (GET /api/tracks/{id}/outline), with the start and an arrow the
// way the car drives.
import { html } from "./lib.js";
import { useFetch } from "./hooks.js";

export function TrackPicture({ trackId, direction, name }) {
  const outline = useFetch(`/api/tracks/${encodeURIComponent(trackId)}/outline?direction=${direction || ""}`);
  if (!outline.data) return html`<div class="track-picture" aria-busy="true"></div>`;
  const { centre, inner, outer } = outline.data;
  const all = [...inner, ...outer];
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  const pad = 0.3;
  // y grows upwards on the track and downwards in SVG.
  const path = (points) => points.map(([x, y], i) => `${i ? "L" : "M"}${(x - minX + pad).toFixed(2)},${(maxY - y + pad).toFixed(2)}`).join(" ") + " Z";
  const [x0, y0] = centre[0], [x1, y1] = centre[Math.min(3, centre.length - 1)];
  const sx = x0 - minX + pad, sy = maxY - y0 + pad;
  const angle = (Math.atan2(-(y1 - y0), x1 - x0) * 180) / Math.PI;
  const w = maxX - minX + 2 * pad, h = maxY - minY + 2 * pad;
  const label = `${name}, driven ${direction === "CLOCKWISE" ? "clockwise" : "counterclockwise"}`;
  return html`<svg class="track-picture" viewBox=${`0 0 ${w.toFixed(2)} ${h.toFixed(2)}`} role="img" aria-label=${label}>
    <path class="track-surface" d=${path(outer)} /><path class="track-infield" d=${path(inner)} />
    <path class="track-centre" d=${path(centre)} />
    <g transform=${`translate(${sx.toFixed(2)} ${sy.toFixed(2)}) rotate(${angle.toFixed(1)})`}>
      <path class="track-arrow" d="M-0.25,-0.18 L0.25,0 L-0.25,0.18 Z" /></g>
  </svg>`;
}
