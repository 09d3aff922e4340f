// SPDX-License-Identifier: Apache-2.0
// Formatting helpers and a tiny safe DOM builder for the dashboard (no dependencies).

const GIB = 1024 ** 3;

export function bytes(n) {
  if (n == null || Number.isNaN(n)) return "–";
  if (n >= GIB) return `${(n / GIB).toFixed(n % GIB === 0 ? 0 : 1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(0)} MiB`;
  return `${n} B`;
}

export function tflops(x) {
  if (x == null) return "–";
  return `${Number(x).toFixed(x >= 100 || Number.isInteger(x) ? 0 : 1)} TFLOPs`;
}

export function pct(x) {
  return x == null ? "–" : `${Number(x).toFixed(0)}%`;
}

export function money(x) {
  return x == null ? "–" : Number(x).toFixed(2);
}

export function hours(x) {
  return x == null ? "–" : Number(x).toFixed(x >= 10 ? 1 : 3);
}

export function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

// h("div", {class: "x", "aria-label": "..."}, child, "text", ...) -> Element. Text is always
// set as text (never parsed as HTML), so values from the API cannot inject markup.
export function h(tag, attrs, ...children) {
  const svg = ["svg", "polyline", "line", "text", "title", "rect", "g", "path"].includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag)
                 : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// A table with a caption (for screen readers), inside a scrollable, focusable wrapper.
export function table(caption, headers, rows) {
  return h("div", {class: "table-wrap", tabindex: 0, role: "region", "aria-label": caption},
    h("table", {},
      h("caption", {class: "sr-only"}, caption),
      h("thead", {}, h("tr", {}, headers.map((c) => h("th", {scope: "col"}, c)))),
      h("tbody", {}, rows)));
}
