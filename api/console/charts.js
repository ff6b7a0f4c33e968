// Charts drawn as SVG (no script from elsewhere, no inline style): an area or line chart over
// time and a pie. Each carries a summary for screen readers and its figures as a hidden table.

import { h, number } from "./ui.js";

const PAD = { left: 48, right: 12, top: 12, bottom: 28 };

/** `points`: [{ label, value }] in order. `area` fills under the line. */
export function timeChart(title, points, { area = true, unit = "requests" } = {}) {
  // Drawn at about the width it will be shown at, so its text stays near 11 px on a phone and
  // on a wide screen alike (the SVG scales to its box).
  const W = Math.max(320, Math.min(1200, window.innerWidth - 64));
  const H = Math.max(180, Math.min(260, Math.round(W / 3)));
  const total = points.reduce((sum, p) => sum + p.value, 0);
  const max = Math.max(1, ...points.map((p) => p.value));
  const x = (i) => PAD.left + (points.length < 2 ? 0 : (i * (W - PAD.left - PAD.right)) / (points.length - 1));
  const y = (v) => PAD.top + (H - PAD.top - PAD.bottom) * (1 - v / max);
  const line = points.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
  const base = H - PAD.bottom;
  const ticks = [0, 0.5, 1].map((f) => Math.round(max * f));
  const every = Math.max(1, Math.ceil(points.length / 6));
  const svg = h("svg:svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": `${title}: ${number(total)} ${unit} in all, busiest ${number(max)}` },
    ticks.map((t) => [
      h("svg:line", { x1: PAD.left, x2: W - PAD.right, y1: y(t), y2: y(t), class: "grid" }),
      h("svg:text", { x: PAD.left - 6, y: y(t) + 4, class: "axis", "text-anchor": "end" }, compact(t)),
    ]),
    points.map((p, i) => (i % every === 0
      ? h("svg:text", { x: x(i), y: H - 8, class: "axis", "text-anchor": i === 0 ? "start" : i === points.length - 1 ? "end" : "middle" }, p.label)
      : null)),
    area && points.length > 1 ? h("svg:path", { d: `${line} L${x(points.length - 1)},${base} L${x(0)},${base} Z`, class: "area" }) : null,
    points.length > 1 ? h("svg:path", { d: line, class: "line" }) : null,
    points.map((p, i) => h("svg:circle", { cx: x(i), cy: y(p.value), r: points.length > 48 ? 0 : 2.5, class: "dot" },
      h("svg:title", {}, `${p.label}: ${number(p.value)}`))));
  return h("figure", { class: "chart-figure" }, svg, hiddenTable(title, ["Period", unit], points.map((p) => [p.label, number(p.value)])));
}

/** `slices`: [{ label, value }]; zero slices are left out. */
export function pieChart(title, slices) {
  const shown = slices.filter((s) => s.value > 0);
  const total = shown.reduce((sum, s) => sum + s.value, 0);
  const r = 80;
  const c = 90;
  let angle = -Math.PI / 2;
  const parts = shown.map((s, i) => {
    const share = s.value / total;
    const cls = `slice slice-${i % 8}`;
    const tip = h("svg:title", {}, `${s.label}: ${number(s.value)} (${(share * 100).toFixed(1)} %)`);
    if (share >= 0.9999) return h("svg:circle", { cx: c, cy: c, r, class: cls }, tip);
    const start = angle;
    angle += share * 2 * Math.PI;
    const [x1, y1, x2, y2] = [c + r * Math.cos(start), c + r * Math.sin(start), c + r * Math.cos(angle), c + r * Math.sin(angle)];
    const large = share > 0.5 ? 1 : 0;
    return h("svg:path", { d: `M${c},${c} L${x1.toFixed(2)},${y1.toFixed(2)} A${r},${r} 0 ${large} 1 ${x2.toFixed(2)},${y2.toFixed(2)} Z`, class: cls }, tip);
  });
  const summary = shown.map((s) => `${s.label} ${((s.value / total) * 100).toFixed(0)} %`).join(", ");
  return h("figure", { class: "pie" },
    h("svg:svg", { viewBox: "0 0 180 180", class: "pie-chart", role: "img", "aria-label": `${title}: ${summary}` }, parts),
    h("ul", { class: "legend" }, shown.map((s, i) => h("li", {},
      h("span", { class: `swatch slice-${i % 8}`, "aria-hidden": "true" }),
      `${s.label} — ${number(s.value)} (${((s.value / total) * 100).toFixed(1)} %)`))));
}

// A table is not clipped by the hidden class itself (it grows to fit its rows): a box around it is.
function hiddenTable(caption, headings, rows) {
  return h("div", { class: "visually-hidden" }, h("table", {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((v) => h("td", {}, v)))))));
}

function compact(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}
