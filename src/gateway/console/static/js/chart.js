// A node's metric series as inline SVG line charts: one chart per metric name, no library.
// Rolled-up points (5-minute, hourly) also carry their low and high: drawn as a band.
import { h } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 560;
const HEIGHT = 160;
const PAD = { right: 12, top: 12, bottom: 28 };
const CHAR_WIDTH = 8.6; // of the 14px monospace axis labels, in viewBox units
const UNITS = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];

function svg(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child);
  return element;
}

export function label(value) {
  for (const [size, unit] of UNITS) {
    if (Math.abs(value) >= size) return `${(value / size).toFixed(1)}${unit}`;
  }
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

function clock(seconds, withDate) {
  const iso = new Date(seconds * 1000).toISOString();
  return withDate ? `${iso.slice(5, 10)} ${iso.slice(11, 16)}` : iso.slice(11, 19);
}

function epoch(at) {
  return typeof at === "number" ? at : Date.parse(at) / 1000;
}

function pointOf(sample) {
  const value = Number(sample.value);
  const step = Number(sample.step || 0);
  return { value, at: epoch(sample.at), step,
    low: step ? Number(sample.low) : value, high: step ? Number(sample.high) : value };
}

/** One chart for the points [{value, at, step?, low?, high?}] of metric `name`. */
export function lineChart(name, samples) {
  const points = samples.map(pointOf).sort((a, b) => a.at - b.at);
  const xs = points.map((p) => p.at);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(0, ...points.map((p) => p.low)), Math.max(...points.map((p) => p.high))];
  const yLabels = [label(y1), label(y0)];
  // wide enough for the longest y label, so no label is cut at the chart's left edge
  const left = Math.ceil(Math.max(...yLabels.map((text) => text.length)) * CHAR_WIDTH) + 12;
  const sx = (x) => left + ((x - x0) / (x1 - x0 || 1)) * (WIDTH - left - PAD.right);
  const sy = (y) => HEIGHT - PAD.bottom - ((y - y0) / (y1 - y0 || 1)) * (HEIGHT - PAD.top - PAD.bottom);
  const line = (key) => points.map((p, i) => `${i ? "L" : "M"}${sx(p.at).toFixed(1)},${sy(p[key]).toFixed(1)}`);
  const last = points[points.length - 1];
  const rolledUp = points.some((p) => p.step);
  const what = rolledUp ? `${points.length} points of ${duration(last.step)}` : `${points.length} samples`;
  const withDate = x1 - x0 > 86400;
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", class: "chart",
    "aria-label": `${name}: ${what}, latest ${label(last.value)}` },
    svg("line", { x1: left, y1: HEIGHT - PAD.bottom, x2: WIDTH - PAD.right, y2: HEIGHT - PAD.bottom, class: "axis" }),
    svg("line", { x1: left, y1: PAD.top, x2: left, y2: HEIGHT - PAD.bottom, class: "axis" }),
    svg("text", { x: left - 6, y: PAD.top + 4, "text-anchor": "end", class: "y-label" }, yLabels[0]),
    svg("text", { x: left - 6, y: HEIGHT - PAD.bottom, "text-anchor": "end", class: "y-label" }, yLabels[1]),
    svg("text", { x: left, y: HEIGHT - 8 }, clock(x0, withDate)),
    svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 8, "text-anchor": "end" }, clock(x1, withDate)));
  if (rolledUp) {
    const band = [...line("high"), ...line("low").reverse().map((step) => `L${step.slice(1)}`)].join(" ");
    chart.append(svg("path", { d: `${band} Z`, class: "band" }));
  }
  chart.append(svg("path", { d: line("value").join(" "), class: "series" }));
  if (points.length === 1) chart.append(svg("circle", { cx: sx(last.at), cy: sy(last.value), r: 3, class: "dot" }));
  return h("figure", { class: "metric" }, h("figcaption", {}, `${name} `, h("span", { class: "latest" }, `latest ${label(last.value)}`)), chart);
}

function duration(seconds) {
  return seconds >= 3600 ? `${seconds / 3600} h` : `${seconds / 60} min`;
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
