// Label audits (service/audits): start an audit of a dataset's labels, and its results:
// summary (per class, the estimated noise transition as a heat map), flagged examples with
// given vs suggested label and score, filter by class, export.
import { api, download, listAll, streamJob } from "./api.js";
import { h, clear, field, table, badge, when, pct, shortId, progressBar } from "./dom.js";
import { bar, heatmap } from "./charts.js";

const DONE = new Set(["ready", "failed", "cancelled"]); // an audit's final statuses

function auditPath(dsId, auditId) {
  return `/v1/datasets/${encodeURIComponent(dsId)}/audits/${encodeURIComponent(auditId)}`;
}

function startForm(ctx, ds, backbones) {
  const bb = h("select", { name: "audit-backbone" }, backbones.map((b) => h("option", { value: b.name }, b.name)));
  const splitBoxes = Object.keys(ds.splits).map((sp) =>
    h("label.check", h("input", { type: "checkbox", name: "audit-split", value: sp, checked: sp === "train" }), ` ${sp}`),
  );
  const method = h("select", { name: "audit-method" }, ["auto", "confident_learning"].map((m) => h("option", { value: m }, m)));
  const submit = h("button", { type: "submit" }, "Start audit");
  const form = h(
    "form.card",
    { "aria-labelledby": "audit-start-title" },
    h("h2", { id: "audit-start-title" }, `Audit the labels of ${ds.name}`),
    h("p.hint", "Out-of-fold probabilities of a cross-validated logistic regression on the backbone's features; confident learning flags the examples whose label looks wrong."),
    h("div.grid-form", field("Backbone", bb), field("Method", method)),
    h("fieldset", h("legend", "Splits audited together"), splitBoxes),
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const splits = [...form.querySelectorAll("input[name=audit-split]:checked")].map((i) => i.value);
    if (!splits.length) {
      ctx.showError(new Error("choose at least one split"));
      return;
    }
    submit.disabled = true;
    try {
      const out = await api.post(`/v1/datasets/${encodeURIComponent(ds.id)}/audit`, { backbone: bb.value, splits, method: method.value });
      ctx.navigate(`#/audits/${ds.id}/${out.audit.id}`);
    } catch (err) {
      ctx.showError(err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function auditsPage(host, ctx) {
  document.title = "Label audits · nmtune";
  const [datasets, backbones] = await Promise.all([listAll("/v1/datasets"), api.get("/v1/backbones").then((r) => r.items)]);
  if (ctx.signal.aborted) return;
  const wanted = ctx.query.get("dataset") || datasets[0]?.id || "";
  const picker = h("select", { name: "audit-dataset" }, datasets.map((d) => h("option", { value: d.id, selected: d.id === wanted }, d.name)));
  picker.addEventListener("change", () => ctx.navigate(`#/audits?dataset=${encodeURIComponent(picker.value)}`));
  host.append(h("h1", "Label audits"));
  if (!datasets.length) {
    host.append(h("p.empty", "No datasets yet: upload one on the ", h("a", { href: "#/datasets" }, "Datasets"), " page."));
    return;
  }
  const ds = datasets.find((d) => d.id === wanted) || datasets[0];
  const audits = await listAll(`/v1/datasets/${encodeURIComponent(ds.id)}/audits`);
  if (ctx.signal.aborted) return;
  host.append(
    h("div.toolbar", field("Dataset", picker)),
    startForm(ctx, ds, backbones),
    h("h2", `Audits of ${ds.name} (${audits.length})`),
    table(
      [
        { label: "audit", cell: (a) => h("a", { href: `#/audits/${ds.id}/${a.id}` }, shortId(a.id)) },
        { label: "backbone", cell: (a) => a.backbone },
        { label: "splits", cell: (a) => a.splits.join(", ") },
        { label: "status", cell: (a) => badge(a.status) },
        { label: "flagged", cls: "num", cell: (a) => (a.summary ? `${a.summary.n_flagged} / ${a.summary.n_examples}` : "–") },
        { label: "estimated noise", cls: "num", cell: (a) => (a.summary ? pct(a.summary.estimated_noise_rate) : "–") },
        { label: "created", cell: (a) => when(a.created_at) },
      ],
      audits,
      { caption: "Newest first", empty: "No audit of this dataset yet." },
    ),
  );
}

export async function auditPage(host, ctx, dsId, auditId) {
  const path = auditPath(dsId, auditId);
  const first = await api.get(path, { limit: 1000, flagged_only: true }, { signal: ctx.signal });
  if (ctx.signal.aborted) return;
  document.title = `Audit ${auditId} · nmtune`;
  host.append(
    h("p.crumbs", h("a", { href: `#/audits?dataset=${encodeURIComponent(dsId)}` }, "← Audits")),
    h("h1", `Label audit ${shortId(auditId)} `, badge(first.status)),
  );
  if (!DONE.has(first.status) && first.job_id) {
    const state = h("div.jobline", { id: "audit-state", "data-status": first.status }, "waiting for the audit job…");
    host.append(h("section.card", state));
    streamJob(first.job_id, (job) => {
      state.dataset.status = job.status;
      clear(state).append(badge(job.status), ` stage: ${job.stage || "–"} `, progressBar(job.progress.done, job.progress.total, "audit progress"));
    }, ctx.signal)
      .then(() => {
        if (!ctx.signal.aborted) {
          clear(host);
          return auditPage(host, ctx, dsId, auditId);
        }
        return null;
      })
      .catch((err) => {
        if (err.name !== "AbortError") ctx.showError(err);
      });
    return;
  }
  const sm = first.summary;
  if (!sm) {
    host.append(h("p.empty", `The audit ended ${first.status}; no results.`));
    return;
  }
  host.append(
    h(
      "section.card",
      { "aria-labelledby": "audit-sum-title" },
      h("h2", { id: "audit-sum-title" }, "Summary"),
      h("p", `${sm.n_flagged} of ${sm.n_examples} examples flagged (${pct(sm.flagged_rate)}); estimated share of wrong labels ${pct(sm.estimated_noise_rate)}. Splits: ${first.splits.join(", ")}; backbone ${first.backbone}; ${sm.method}, score ${sm.score}, ${sm.repeats} × ${sm.folds}-fold.`),
      sm.agreement == null
        ? null
        : h("p", { id: "audit-agreement" }, `Out of fold, the audit's head agrees with ${pct(sm.agreement)} of the given labels. The rest are wrong labels or the head's own errors where classes overlap in the embedding; the more of those errors, the higher the estimate and the flags run.`),
      table(
        [
          { label: "class", cell: (c) => String(c.label) },
          { label: "examples", cls: "num", cell: (c) => String(c.n) },
          { label: "flagged", cls: "num", cell: (c) => String(c.n_flagged) },
          { label: "estimated noise", cls: "num", cell: (c) => pct(c.estimated_noise_rate) },
        ],
        sm.per_class,
        { caption: "Per class (given label)" },
      ),
      sm.transition
        ? h(
            "figure.heat-fig",
            { id: "audit-transition" },
            heatmap(sm.transition, sm.classes, "Estimated p(given label | true class)", { cols: "given", fmt: (v) => `${Math.round(v * 100)}` }),
            h("figcaption", "Each row: the given labels of the class's surest out-of-fold examples (its anchors), in %. Off the diagonal: the estimated label noise."),
          )
        : null,
    ),
  );
  const rows = first.examples ? first.examples.items : [];
  const classSel = h("select", { name: "audit-class" }, h("option", { value: "" }, "every class"), sm.classes.map((c) => h("option", { value: String(c) }, String(c))));
  const fmt = h("select", { name: "audit-format" }, h("option", { value: "csv" }, "CSV"), h("option", { value: "jsonl" }, "JSONL"));
  const box = h("div", { id: "audit-examples" });
  const show = () => {
    const want = classSel.value;
    const shown = rows.filter((r) => !want || String(r.given) === want || String(r.suggested) === want);
    clear(box).append(
      table(
        [
          { label: "#", cell: (r) => String(r.position) },
          { label: "split", cell: (r) => r.split },
          { label: "text", cell: (r) => r.text ?? h("code", r.image_sha256 || "") },
          { label: "given", cell: (r) => String(r.given) },
          { label: "suggested", cell: (r) => h("strong", String(r.suggested)) },
          { label: "score", cls: "num", cell: (r) => bar(r.score) },
        ],
        shown,
        { caption: `${shown.length} flagged examples${want ? ` with class ${want} (given or suggested)` : ""}, most suspicious first`, empty: "No flagged example." },
      ),
    );
  };
  classSel.addEventListener("change", show);
  show();
  host.append(
    h(
      "section.card",
      { "aria-labelledby": "audit-ex-title" },
      h("h2", { id: "audit-ex-title" }, "Flagged examples"),
      h(
        "div.toolbar",
        field("Class", classSel),
        field("Export format", fmt),
        h("button", { type: "button", onclick: () => download(`${path}/export?format=${fmt.value}`, `${auditId}.${fmt.value}`).catch(ctx.showError) }, "Export"),
      ),
      box,
    ),
  );
}
