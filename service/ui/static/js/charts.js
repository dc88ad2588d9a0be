// Small SVG charts: line chart (optionally log-scale y), confusion-matrix heat map.
// Each chart is role="img" with a text description; the numbers are also in a table nearby.
import { h, s, num } from "./dom.js";

export const PALETTE = ["#1d4ed8", "#b45309", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#4b5563"];

function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= step0) || step0;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

/**
 * lineChart({series: [{name, points: [[x, y], ...], dash}], title, xLabel, yLabel, logY,
 *            yMin, yMax, width, height, markers: [{x, label}]})
 */
export function lineChart(opts) {
  const { series, title, xLabel = "", yLabel = "", logY = false } = opts;
  const W = opts.width || 560;
  const H = opts.height || 260;
  const m = { l: 58, r: 12, t: 12, b: 40 };
  const pts = series.flatMap((sr) => sr.points).filter(([, y]) => Number.isFinite(y) && (!logY || y > 0));
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    role: "img",
    "aria-label": `${title}. ${series.map((sr) => `${sr.name}: ${sr.points.length} points`).join("; ")}`,
  });
  svg.append(s("title", {}, title));
  if (!pts.length) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "muted" }, "no data yet"));
    return svg;
  }
  const tf = logY ? (v) => Math.log10(v) : (v) => v;
  const x0 = opts.xMin ?? Math.min(...pts.map((p) => p[0]));
  let x1 = opts.xMax ?? Math.max(...pts.map((p) => p[0]));
  if (x1 === x0) x1 = x0 + 1;
  let y0 = opts.yMin ?? Math.min(...pts.map((p) => tf(p[1])));
  let y1 = opts.yMax ?? Math.max(...pts.map((p) => tf(p[1])));
  if (y1 === y0) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const X = (v) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (v) => H - m.b - ((tf(v) - y0) / (y1 - y0)) * (H - m.t - m.b);
  const Yt = (t) => H - m.b - ((t - y0) / (y1 - y0)) * (H - m.t - m.b);
  const axis = s("g", { class: "axis" });
  axis.append(s("line", { x1: m.l, y1: H - m.b, x2: W - m.r, y2: H - m.b }));
  axis.append(s("line", { x1: m.l, y1: m.t, x2: m.l, y2: H - m.b }));
  const yTicks = logY
    ? niceTicks(Math.floor(y0), Math.ceil(y1), Math.min(6, Math.ceil(y1) - Math.floor(y0) || 1)).filter((t) => Number.isInteger(t) && t >= y0 - 1e-9 && t <= y1 + 1e-9)
    : niceTicks(y0, y1);
  for (const t of yTicks) {
    const yy = Yt(t);
    axis.append(s("line", { class: "grid", x1: m.l, y1: yy, x2: W - m.r, y2: yy }));
    axis.append(s("text", { x: m.l - 6, y: yy + 4, "text-anchor": "end" }, logY ? `1e${t}` : num(t, 3)));
  }
  const xTicks = niceTicks(x0, x1, 6).filter((t) => !opts.integerX || Number.isInteger(t));
  for (const t of xTicks) {
    axis.append(s("text", { x: X(t), y: H - m.b + 16, "text-anchor": "middle" }, num(t, 2)));
  }
  axis.append(s("text", { x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle", class: "label" }, xLabel));
  axis.append(
    s("text", { x: 14, y: (m.t + H - m.b) / 2, "text-anchor": "middle", class: "label", transform: `rotate(-90 14 ${(m.t + H - m.b) / 2})` }, yLabel),
  );
  svg.append(axis);
  let lastLabelX = -Infinity;
  for (const mk of opts.markers || []) {
    const xx = X(mk.x);
    if (mk.x > x0) svg.append(s("line", { class: "marker", x1: xx, y1: m.t, x2: xx, y2: H - m.b }, s("title", {}, mk.label || "")));
    if (mk.label && xx - lastLabelX > 90) {
      svg.append(s("text", { class: "marker-text", x: xx + 3, y: m.t + 10 }, mk.label));
      lastLabelX = xx;
    }
  }
  series.forEach((sr, i) => {
    const color = sr.color || PALETTE[i % PALETTE.length];
    const good = sr.points.filter(([, y]) => Number.isFinite(y) && (!logY || y > 0));
    if (!good.length) return;
    const d = good.map(([x, y], j) => `${j ? "L" : "M"}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join("");
    svg.append(s("path", { d, fill: "none", stroke: color, "stroke-width": 2, "stroke-dasharray": sr.dash || null }));
    if (good.length <= 60) {
      for (const [x, y] of good) {
        svg.append(s("circle", { cx: X(x), cy: Y(y), r: 2.5, fill: color }, s("title", {}, `${sr.name}: x=${num(x, 3)}, y=${num(y, 4)}`)));
      }
    }
  });
  return h("figure.chart-fig", svg, legend(series));
}

export function legend(series) {
  return h(
    "ul.legend",
    { "aria-label": "legend" },
    series.map((sr, i) =>
      h(
        "li",
        s("svg", { width: 22, height: 10, "aria-hidden": "true" },
          s("line", { x1: 1, y1: 5, x2: 21, y2: 5, stroke: sr.color || PALETTE[i % PALETTE.length], "stroke-width": 3, "stroke-dasharray": sr.dash || null })),
        sr.name,
      ),
    ),
  );
}

function mix(t) {
  // white -> #1d4ed8; text turns white past the middle for contrast
  const a = [255, 255, 255];
  const b = [29, 78, 216];
  const c = a.map((v, i) => Math.round(v + (b[i] - v) * t));
  return `rgb(${c.join(",")})`;
}

/** Confusion matrix heat map: rows true labels, columns predicted; colour = row share.
 * opts: {cols: the column axis' name ("predicted"), fmt: a cell's text (the value)}. */
export function heatmap(matrix, labels, title, opts = {}) {
  const cols = opts.cols || "predicted";
  const fmt = opts.fmt || ((v) => String(v));
  const n = labels.length;
  const cell = Math.max(28, Math.min(84, Math.floor(480 / Math.max(n, 1))));
  const names = labels.map((l) => String(l));
  const longest = Math.max(...names.map((l) => Math.min(l.length, 16)), 3);
  const flat = longest * 7.5 < cell; // column labels fit horizontally
  const pad = Math.min(140, 24 + longest * 7.5);
  const W = pad + n * cell + 8;
  const H = pad + n * cell + 8;
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart heat",
    width: W,
    role: "img",
    "aria-label": `${title}: rows are true labels, columns ${cols} labels`,
  });
  svg.append(s("title", {}, title));
  svg.append(s("text", { x: pad + (n * cell) / 2, y: flat ? pad - 28 : 12, "text-anchor": "middle", class: "label" }, cols));
  svg.append(
    s("text", { x: 10, y: pad + (n * cell) / 2, "text-anchor": "middle", class: "label", transform: `rotate(-90 10 ${pad + (n * cell) / 2})` }, "true"),
  );
  const clip = (t) => (t.length > 16 ? `${t.slice(0, 15)}…` : t);
  names.forEach((lab, j) => {
    const x = pad + j * cell + cell / 2;
    svg.append(flat
      ? s("text", { x, y: pad - 8, "text-anchor": "middle" }, clip(lab))
      : s("text", { x, y: pad - 6, "text-anchor": "start", transform: `rotate(-45 ${x} ${pad - 6})` }, clip(lab)));
  });
  matrix.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    svg.append(s("text", { x: pad - 6, y: pad + i * cell + cell / 2 + 4, "text-anchor": "end" }, clip(names[i])));
    row.forEach((v, j) => {
      const t = v / total;
      const g = s("g", { class: i === j ? "diag" : "off" });
      g.append(
        s("rect", { x: pad + j * cell, y: pad + i * cell, width: cell - 1, height: cell - 1, fill: mix(t) },
          s("title", {}, `true ${names[i]}, ${cols} ${names[j]}: ${fmt(v)} (${(t * 100).toFixed(0)} % of the row)`)),
      );
      if (cell >= 24) {
        g.append(
          s("text", { x: pad + j * cell + cell / 2, y: pad + i * cell + cell / 2 + 4, "text-anchor": "middle", class: t > 0.5 ? "on-dark" : null }, fmt(v)),
        );
      }
      svg.append(g);
    });
  });
  return svg;
}

/** A horizontal bar in [0, 1] with its number, for table cells. */
export function bar(v) {
  const w = Number.isFinite(v) ? Math.max(0, Math.min(1, v)) * 100 : 0;
  return h(
    "span.bar",
    s("svg", { viewBox: "0 0 100 10", width: 80, height: 10, "aria-hidden": "true" },
      s("rect", { x: 0, y: 0, width: 100, height: 10, class: "bar-bg" }),
      s("rect", { x: 0, y: 0, width: w, height: 10, class: "bar-fg" })),
    h("span", Number.isFinite(v) ? v.toFixed(3) : "–"),
  );
}
