// Small DOM helpers. Every user-supplied string goes in as text (never as HTML).

const SVG_NS = "http://www.w3.org/2000/svg";

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

/** h("tag.class1.class2", {attr: value, onclick: fn}, ...children) */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs instanceof Node || typeof attrs !== "object" || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** s("rect", {x: 1, ...}, ...children): an SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function pct(v, digits = 1) {
  return typeof v === "number" && Number.isFinite(v) ? `${(v * 100).toFixed(digits)} %` : "–";
}

export function num(v, digits = 3) {
  if (typeof v !== "number" || !Number.isFinite(v)) return "–";
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(2);
  return String(parseFloat(v.toFixed(digits)));
}

/** A score with three decimals (metrics: 1.000, 0.875). */
export function f3(v) {
  return typeof v === "number" && Number.isFinite(v) ? v.toFixed(3) : "–";
}

export function secs(v) {
  if (typeof v !== "number" || !Number.isFinite(v)) return "–";
  return v < 60 ? `${v.toFixed(1)} s` : `${Math.floor(v / 60)} min ${Math.round(v % 60)} s`;
}

export function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function shortId(id) {
  return id ? (id.length > 14 ? `${id.slice(0, 11)}…` : id) : "–";
}

/** A labelled form field: label + control (+ hint), ids wired for screen readers. */
let fieldSeq = 0;
export function field(labelText, control, hint) {
  const id = control.id || `f${++fieldSeq}`;
  control.id = id;
  const parts = [h("label", { for: id }, labelText), control];
  if (hint) {
    const hid = `${id}-hint`;
    control.setAttribute("aria-describedby", hid);
    parts.push(h("small.hint", { id: hid }, hint));
  }
  return h("div.field", parts);
}

export function badge(status) {
  return h(`span.badge.st-${String(status).replace(/[^a-z]/g, "")}`, String(status));
}

/** A progress bar with a text equivalent. */
export function progressBar(done, total, label) {
  const max = total > 0 ? total : 1;
  const value = total > 0 ? Math.min(done, total) : 0;
  return h(
    "span.progress",
    h("progress", { max, value, "aria-label": label || "progress" }),
    h("span.progress-text", total > 0 ? `${done} / ${total}` : "–"),
  );
}

/** A table; columns: [{label, cell: row => node|string, cls, sort}] */
export function table(columns, rows, { caption, empty = "Nothing here yet.", rowAttrs } = {}) {
  if (!rows.length) return h("p.empty", empty);
  return h(
    "div.table-wrap",
    h(
      "table",
      caption ? h("caption", caption) : null,
      h("thead", h("tr", columns.map((c) => h("th", { scope: "col", class: c.cls }, c.label)))),
      h(
        "tbody",
        rows.map((r) =>
          h(
            "tr",
            rowAttrs ? rowAttrs(r) : {},
            columns.map((c, i) =>
              h(i === 0 && c.rowHeader !== false ? "th" : "td", { scope: i === 0 ? "row" : null, class: c.cls }, c.cell(r)),
            ),
          ),
        ),
      ),
    ),
  );
}
