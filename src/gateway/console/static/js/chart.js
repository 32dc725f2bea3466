// Metric samples as inline SVG line charts: one chart per metric name, no library.
import { h } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 560;
const HEIGHT = 160;
const PAD = { left: 56, right: 12, top: 12, bottom: 28 };

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child);
  return element;
}

function label(value) {
  if (Math.abs(value) >= 1e6) return `${(value / 1e6).toFixed(1)}M`;
  if (Math.abs(value) >= 1e3) return `${(value / 1e3).toFixed(1)}k`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

function clock(seconds) {
  return new Date(seconds * 1000).toISOString().slice(11, 19);
}

function epoch(at) {
  return typeof at === "number" ? at : Date.parse(at) / 1000;
}

/** One chart for samples [{value, at}] of metric `name`. */
export function lineChart(name, samples) {
  const points = samples.map((p) => ({ value: Number(p.value), at: epoch(p.at) }))
    .sort((a, b) => a.at - b.at);
  const xs = points.map((p) => p.at);
  const ys = points.map((p) => p.value);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(0, ...ys), Math.max(...ys)];
  const sx = (x) => PAD.left + ((x - x0) / (x1 - x0 || 1)) * (WIDTH - PAD.left - PAD.right);
  const sy = (y) => HEIGHT - PAD.bottom - ((y - y0) / (y1 - y0 || 1)) * (HEIGHT - PAD.top - PAD.bottom);
  const path = points.map((p, i) => `${i ? "L" : "M"}${sx(p.at).toFixed(1)},${sy(p.value).toFixed(1)}`).join(" ");
  const last = points[points.length - 1];
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "chart",
    "aria-label": `${name}: ${points.length} samples, latest ${label(last.value)}` },
    svg("line", { x1: PAD.left, y1: HEIGHT - PAD.bottom, x2: WIDTH - PAD.right, y2: HEIGHT - PAD.bottom, class: "axis" }),
    svg("line", { x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: HEIGHT - PAD.bottom, class: "axis" }),
    svg("text", { x: PAD.left - 6, y: PAD.top + 4, "text-anchor": "end" }, label(y1)),
    svg("text", { x: PAD.left - 6, y: HEIGHT - PAD.bottom, "text-anchor": "end" }, label(y0)),
    svg("text", { x: PAD.left, y: HEIGHT - 8 }, clock(x0)),
    svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 8, "text-anchor": "end" }, clock(x1)),
    svg("path", { d: path, class: "series" }));
  if (points.length === 1) chart.append(svg("circle", { cx: sx(last.at), cy: sy(last.value), r: 3, class: "dot" }));
  return h("figure", { class: "metric" }, h("figcaption", {}, `${name} `, h("span", { class: "latest" }, `latest ${label(last.value)}`)), chart);
}

/** Charts for every metric in a Megam::MetricSampleCollection's results. */
export function charts(samples) {
  const byName = new Map();
  for (const sample of samples) {
    if (!byName.has(sample.name)) byName.set(sample.name, []);
    byName.get(sample.name).push(sample);
  }
  return [...byName.keys()].sort().map((name) => lineChart(name, byName.get(name)));
}
