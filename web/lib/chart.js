// SPDX-License-Identifier: Apache-2.0
// Allocation bars (used vs requested vs limit) and SVG line charts of recent samples.
import {h} from "./format.js";

const clamp = (x) => Math.max(0, Math.min(100, x));

// A horizontal meter: limit (hatched), request (solid light), used (dark) on one track scaled
// to `total`. The numbers are in data-* attributes and the accessible name.
export function meter({label, used, request, limit, total, fmt, kind}) {
  const scale = total > 0 ? total : Math.max(used || 0, request || 0, limit || 0, 1);
  const w = (x) => `${clamp(((x || 0) / scale) * 100).toFixed(2)}%`;
  const reqOnly = used == null && limit == null; // a pool: what is requested of its capacity
  const text = reqOnly ? `${label}: ${fmt(request)} requested of ${fmt(total)}` :
    `${label}: ${fmt(used)} used, ${fmt(request)} requested, ${fmt(limit)} limit` +
    (total > 0 ? ` of ${fmt(total)}` : "");
  const over = used > request && request > 0;
  return h("div", {class: "meter-row"},
    h("span", {class: "meter-label"}, label),
    h("div", {class: "meter", role: "img", "aria-label": text, title: text,
              "data-kind": kind, "data-used": used ?? 0, "data-request": request ?? 0,
              "data-limit": limit ?? 0, "data-total": total ?? 0},
      h("span", {class: "m-lim", style: {width: w(limit)}}),
      h("span", {class: "m-req", style: {width: w(request)}}),
      h("span", {class: over ? "m-used m-over" : "m-used", style: {width: w(used)}})),
    h("span", {class: "meter-val"}, reqOnly ? `${fmt(request)} requested of ${fmt(total)}` :
      `${fmt(used)} / ${fmt(request)} / ${fmt(limit)}`));
}

// A line chart of samples [{t_ms, utilization, vram_used}]: utilization and VRAM (percent of
// vramTotal) over time, 0..100 on the y axis.
export function lineChart(title, samples, vramTotal) {
  const W = 320, H = 90, L = 28, B = 14, T = 6;
  const svg = (...c) => h("svg", {viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img",
                                  "aria-label": title}, h("title", {}, title), ...c);
  const grid = [0, 50, 100].map((v) => {
    const y = T + (H - B - T) * (1 - v / 100);
    return h("g", {}, h("line", {x1: L, x2: W, y1: y, y2: y, class: "grid"}),
             h("text", {x: L - 4, y: y + 3, class: "axis", "text-anchor": "end"}, `${v}%`));
  });
  if (!samples || samples.length < 2)
    return svg(...grid, h("text", {x: (W + L) / 2, y: H / 2, class: "axis",
                                   "text-anchor": "middle"}, "waiting for samples"));
  const t0 = samples[0].t_ms, t1 = samples[samples.length - 1].t_ms, span = Math.max(1, t1 - t0);
  const pts = (f) => samples.map((s) => {
    const x = L + ((s.t_ms - t0) / span) * (W - L);
    const y = T + (H - B - T) * (1 - clamp(f(s)) / 100);
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  }).join(" ");
  const mins = Math.max(1, Math.round(span / 60000));
  return svg(...grid,
    h("polyline", {points: pts((s) => (vramTotal ? (s.vram_used / vramTotal) * 100 : 0)),
                   class: "line-vram"}),
    h("polyline", {points: pts((s) => s.utilization), class: "line-util"}),
    h("text", {x: L, y: H - 2, class: "axis"}, `-${span >= 60000 ? mins + " min" : Math.round(span / 1000) + " s"}`),
    h("text", {x: W, y: H - 2, class: "axis", "text-anchor": "end"}, "now"));
}
