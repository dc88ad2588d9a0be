// Heads: a train form, the comparison table across heads of one dataset, and the list.
import { api, features, listAll } from "./api.js";
import { h, clear, field, table, badge, when, shortId, pct, num } from "./dom.js";
import { bestOf, compareColumns, idSplit } from "./compare.js";

const PRESETS = ["robust", "paper-code", "paper-text"];
const FAST_HINT = 'JSON, e.g. {"epochs": 8, "min_steps": 60}; empty for the preset as it is.';

function options(values, selected, labelOf = (v) => v) {
  return values.map((v) => h("option", { value: v, selected: v === selected }, labelOf(v)));
}

function trainForm(ctx, datasets, backbones, methods, selected) {
  const ds = h("select", { name: "dataset_id", required: true }, options(datasets.map((d) => d.id), selected, (id) => {
    const d = datasets.find((x) => x.id === id);
    return `${d.name} (${shortId(id)})`;
  }));
  const bb = h("select", { name: "backbone", required: true }, options(backbones.map((b) => b.name), backbones[0]?.name, (n) => {
    const b = backbones.find((x) => x.name === n);
    return b && b.model ? `${n} (${b.model})` : n;
  }));
  const method = h("select", { name: "method" }, options(methods, "auto"));
  const preset = h("select", { name: "preset" }, options(PRESETS, "robust"));
  const seed = h("input", { type: "number", name: "seed", min: 0, value: 0, inputmode: "numeric" });
  const name = h("input", { type: "text", name: "name", maxlength: 200, autocomplete: "off" });
  const overrides = h("textarea", { name: "overrides", rows: 2, spellcheck: "false" });
  const submit = h("button", { type: "submit" }, "Train");
  const form = h(
    "form.card",
    { "aria-labelledby": "train-title" },
    h("h2", { id: "train-title" }, "Train a head"),
    h(
      "div.grid-form",
      field("Dataset", ds),
      field("Backbone", bb),
      field("Method", method, "auto tries lr and nmtune variants and keeps the simplest within one standard error of the best."),
      field("Preset", preset, "Ignored by lr."),
      field("Seed", seed),
      field("Name (optional)", name),
    ),
    field("Overrides", overrides, FAST_HINT),
    submit,
  );
  if (!datasets.length) {
    submit.disabled = true;
    form.append(h("p.hint", "Upload a dataset first (", h("a", { href: "#/datasets" }, "Datasets"), ")."));
  }
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    let ov = {};
    if (overrides.value.trim()) {
      try {
        ov = JSON.parse(overrides.value);
      } catch (err) {
        ctx.showError(new Error(`overrides: not JSON (${err.message})`));
        overrides.focus();
        return;
      }
    }
    submit.disabled = true;
    try {
      const out = await api.post("/v1/heads", {
        dataset_id: ds.value,
        backbone: bb.value,
        method: method.value,
        preset: preset.value,
        seed: Number(seed.value || 0),
        name: name.value.trim(),
        overrides: ov,
      });
      ctx.announce(`Training head ${out.head.id}`);
      ctx.navigate(`#/heads/${out.head.id}`);
    } catch (err) {
      ctx.showError(err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function fmt(c, v) {
  if (typeof v !== "number") return "–";
  if (c.fmt === "pct") return pct(v);
  if (c.fmt === "s") return num(v, 2);
  return v.toFixed(3);
}

export function comparisonTable(heads, dataset) {
  const ready = heads.filter((hd) => hd.status === "ready" && hd.metrics);
  if (!ready.length) return h("p.empty", "No trained heads on this dataset yet.");
  const cols = compareColumns(ready);
  const best = bestOf(ready, cols);
  const groups = [];
  for (const c of cols) {
    const last = groups[groups.length - 1];
    if (last && last.split === c.split) last.n += 1;
    else groups.push({ split: c.split, n: 1 });
  }
  const idName = idSplit(ready[0].metrics);
  return h(
    "div.table-wrap",
    h(
      "table.compare",
      { id: "compare" },
      h("caption", `Heads of ${dataset ? dataset.name : "this dataset"} compared. `, h("span.best-key", "best"), " in each column: highest score, shortest time (ties all marked). ID = the ", h("code", idName || "test"), " split."),
      h(
        "thead",
        h("tr", h("td", { colspan: 4 }), groups.map((g) => h("th", { scope: "colgroup", colspan: g.n }, g.split === "ID" ? `ID (${idName})` : g.split))),
        h("tr", ["head", "method", "preset", "backbone"].map((t) => h("th", { scope: "col" }, t)), cols.map((c) => h("th.num", { scope: "col" }, c.label))),
      ),
      h(
        "tbody",
        ready.map((hd) =>
          h(
            "tr",
            h("th", { scope: "row" }, h("a", { href: `#/heads/${hd.id}` }, hd.name || shortId(hd.id))),
            h("td", hd.method === "auto" && hd.config?.method_used ? `auto → ${hd.config.method_used}` : hd.method),
            h("td", hd.method === "lr" ? "–" : hd.preset),
            h("td", hd.backbone),
            cols.map((c) => {
              const v = c.get(hd);
              const isBest = typeof v === "number" && best[c.key] !== undefined && v === best[c.key];
              return h(`td.num${isBest ? ".best" : ""}`, isBest ? h("strong", { title: "best in this column" }, fmt(c, v), h("span.visually-hidden", " (best)")) : fmt(c, v));
            }),
          ),
        ),
      ),
    ),
  );
}

export async function headsPage(host, ctx) {
  document.title = "Heads · nmtune";
  const [datasets, backbones, feats] = await Promise.all([
    listAll("/v1/datasets"),
    api.get("/v1/backbones").then((r) => r.items),
    features(),
  ]);
  if (ctx.signal.aborted) return;
  const wanted = ctx.query.get("dataset") || "";
  const picker = h(
    "select",
    { name: "dataset-filter" },
    h("option", { value: "" }, "all datasets"),
    options(datasets.map((d) => d.id), wanted, (id) => datasets.find((x) => x.id === id).name),
  );
  picker.addEventListener("change", () => ctx.navigate(picker.value ? `#/heads?dataset=${encodeURIComponent(picker.value)}` : "#/heads"));
  const compareBox = h("section", { "aria-labelledby": "cmp-title" });
  const listBox = h("section", { "aria-labelledby": "list-title" });
  host.append(
    h("h1", "Heads"),
    trainForm(ctx, datasets, backbones, feats.methods, wanted || datasets[0]?.id),
    h("div.toolbar", field("Show heads of", picker)),
    compareBox,
    listBox,
  );
  const heads = await listAll("/v1/heads", wanted ? { dataset_id: wanted } : {});
  if (ctx.signal.aborted) return;
  const dsName = (id) => datasets.find((d) => d.id === id)?.name || (id ? shortId(id) : "(deleted)");
  if (wanted) {
    compareBox.append(h("h2", { id: "cmp-title" }, "Comparison"), comparisonTable(heads, datasets.find((d) => d.id === wanted)));
  } else {
    compareBox.append(h("h2", { id: "cmp-title" }, "Comparison"), h("p.hint", "Choose a dataset above to compare its heads side by side."));
  }
  clear(listBox).append(
    h("h2", { id: "list-title" }, `All heads${wanted ? ` of ${dsName(wanted)}` : ""} (${heads.length})`),
    table(
      [
        { label: "head", cell: (hd) => h("a", { href: `#/heads/${hd.id}` }, hd.name || shortId(hd.id)) },
        { label: "dataset", cell: (hd) => dsName(hd.dataset_id) },
        { label: "method", cell: (hd) => hd.method },
        { label: "preset", cell: (hd) => (hd.method === "lr" ? "–" : hd.preset) },
        { label: "backbone", cell: (hd) => hd.backbone },
        { label: "status", cell: (hd) => badge(hd.status) },
        { label: "ID accuracy", cls: "num", cell: (hd) => pct(hd.metrics?.[idSplit(hd.metrics)]?.accuracy) },
        { label: "created", cell: (hd) => when(hd.created_at) },
      ],
      heads,
      { caption: "Newest first", empty: "No heads yet: train one above." },
    ),
  );
}
