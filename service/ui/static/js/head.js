// One head: live training curves (SSE), auto's candidates, per-split evaluation (confusion
// heat map, per-class precision / recall), spectrum raw vs adapted, predict, export.
import { api, download, features, streamJob } from "./api.js";
import { h, clear, field, table, badge, when, pct, num, f3, secs, progressBar, shortId } from "./dom.js";
import { bar, heatmap, lineChart } from "./charts.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const LOSSES = ["total", "ce", "mse", "cov", "svd"];

function dl(pairs) {
  return h(
    "dl.meta",
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => [h("dt", k), h("dd", v)]),
  );
}

function reportLabel(e) {
  const cand = e.candidate ? ` #${e.candidate}` : "";
  return `${e.method}${cand} ${e.phase || "fit"}`;
}

/** The per-epoch reports as charts: loss terms and validation scores against report number. */
function curves(epochs) {
  const box = h("div.charts");
  if (!epochs.length) {
    box.append(h("p.empty", "No epoch reported yet."));
    return box;
  }
  const markers = [];
  let prev = null;
  epochs.forEach((e, i) => {
    const lab = reportLabel(e);
    if (lab !== prev) markers.push({ x: i + 1, label: lab });
    prev = lab;
  });
  const present = LOSSES.filter((k) => epochs.some((e) => e.losses && typeof e.losses[k] === "number"));
  const lossSeries = present.map((k) => ({
    name: k,
    points: epochs.map((e, i) => [i + 1, e.losses ? e.losses[k] : NaN]).filter(([, y]) => typeof y === "number"),
    dash: k === "total" ? null : "4 3",
  }));
  const valSeries = [
    { name: "validation accuracy", points: epochs.map((e, i) => [i + 1, e.val_accuracy]).filter(([, y]) => typeof y === "number") },
    { name: "validation macro-F1", points: epochs.map((e, i) => [i + 1, e.val_macro_f1]).filter(([, y]) => typeof y === "number"), dash: "4 3" },
  ].filter((sr) => sr.points.length);
  if (lossSeries.length) {
    box.append(lineChart({ series: lossSeries, title: "Loss terms per epoch report", xLabel: "epoch report", yLabel: "loss", markers, integerX: true, xMin: 1, xMax: Math.max(2, epochs.length) }));
  }
  const lows = valSeries.flatMap((sr) => sr.points.map((p) => p[1]));
  const yMin = lows.length ? Math.max(0, Math.floor(Math.min(...lows) * 10) / 10 - 0.05) : 0;
  box.append(lineChart({ series: valSeries, title: "Validation score per epoch report", xLabel: "epoch report", yLabel: "score", markers, integerX: true, yMin, yMax: 1, xMin: 1, xMax: Math.max(2, epochs.length) }));
  const last = epochs[epochs.length - 1];
  box.append(
    h("p.hint.wide", `${epochs.length} reports; last: ${reportLabel(last)}, epoch ${last.epoch} of ${last.epochs}` +
      (typeof last.val_accuracy === "number" ? `, validation accuracy ${pct(last.val_accuracy)}` : "") +
      ". Markers show where a new candidate or phase (cv = a cross-validation fold, fit = the kept head) starts."),
  );
  return box;
}

function jobPanel(job, ctx, onCancel) {
  const running = !TERMINAL.has(job.status);
  return h(
    "div.jobline",
    { id: "job-state", "data-status": job.status },
    badge(job.status),
    h("span", ` stage: ${job.stage || "–"} `),
    progressBar(job.progress.done, job.progress.total, `${job.stage || "job"} progress`),
    job.error
      ? h("span.error-text", running ? ` attempt ${job.attempts}, after ${job.error.type}: ${job.error.message}` : ` ${job.error.type}: ${job.error.message}`)
      : null,
    running && !job.cancel_requested ? h("button.danger.small", { type: "button", onclick: onCancel }, "Cancel training") : null,
    job.cancel_requested && running ? h("span", " cancelling…") : null,
    h("a.small", { href: "#/jobs" }, " all jobs"),
  );
}

function candidatesSection(head) {
  const cands = head.config?.candidates || [];
  if (!cands.length) return null;
  const score = (c) => c.cv_mean ?? c.val_accuracy;
  const curveSeries = cands
    .filter((c) => !c.raced_out && !c.over_budget && Array.isArray(c.cv_curve) && c.cv_curve.length > 1)
    .map((c) => ({ name: `#${c.index} ${c.method} ${c.preset}${Object.keys(c.overrides || {}).length ? " " + JSON.stringify(c.overrides) : ""}`, points: c.cv_curve.map((v, i) => [i, v]) }));
  return h(
    "section.card",
    { "aria-labelledby": "cand-title" },
    h("h2", { id: "cand-title" }, "auto: candidates and scores"),
    h("p.hint", head.config?.validation || ""),
    table(
      [
        { label: "#", cell: (c) => String(c.index) },
        { label: "method", cell: (c) => c.method },
        { label: "preset", cell: (c) => (c.method === "lr" ? "–" : c.preset) },
        { label: "overrides", cell: (c) => (Object.keys(c.overrides || {}).length ? h("code", JSON.stringify(c.overrides)) : "–") },
        { label: "score", cls: "num", cell: (c) => bar(score(c)) },
        { label: "CV folds", cls: "num", cell: (c) => String((c.cv_scores || []).length || "–") },
        { label: "best epoch", cls: "num", cell: (c) => String(c.best_epoch ?? "–") },
        { label: "chosen", cell: (c) => (c.selected ? h("strong", "✔ chosen") : "") },
        { label: "note", cell: (c) => (c.raced_out ? `stopped early: ${c.raced_out}` : c.over_budget ? `over the time budget: ${c.over_budget}` : c.skipped ? `not fitted: ${c.skipped}` : "") },
      ],
      cands,
      { caption: "Score: mean cross-validated accuracy (or validation accuracy); the simplest candidate within one standard error of the best is chosen." },
    ),
    curveSeries.length
      ? lineChart({ series: curveSeries, title: "Cross-validated accuracy by epoch, per candidate", xLabel: "epoch (0 = start)", yLabel: "CV accuracy", integerX: true })
      : null,
  );
}

function evaluationSection(head) {
  const splits = Object.keys(head.metrics || {}).filter((k) => k !== "ood_average");
  if (!splits.length) return null;
  const pick = h("select", { name: "eval-split", id: "eval-split" }, splits.map((sp) => h("option", { value: sp, selected: sp === "test" }, sp)));
  const body = h("div.eval-body");
  const show = () => {
    const m = head.metrics[pick.value];
    const labels = m.labels || head.classes || [];
    clear(body).append(
      dl([
        ["accuracy", pct(m.accuracy)],
        ["macro-F1", f3(m.macro_f1)],
        ["MCC", f3(m.mcc)],
        ["examples", String(m.n_samples)],
      ]),
      h(
        "div.two",
        h("figure.heat-fig", { id: "confusion" }, heatmap(m.confusion_matrix, labels, `Confusion matrix, split ${pick.value}`),
          h("figcaption", "Rows: true label; columns: predicted label; colour: share of the row.")),
        table(
          [
            { label: "label", cell: (l) => String(l) },
            { label: "precision", cls: "num", cell: (l) => bar(m.per_class[String(l)]?.precision) },
            { label: "recall", cls: "num", cell: (l) => bar(m.per_class[String(l)]?.recall) },
            { label: "F1", cls: "num", cell: (l) => f3(m.per_class[String(l)]?.f1) },
            { label: "support", cls: "num", cell: (l) => String(m.per_class[String(l)]?.support ?? 0) },
          ],
          labels,
          { caption: `Per class, split ${pick.value}` },
        ),
      ),
    );
  };
  pick.addEventListener("change", show);
  show();
  const ood = head.metrics.ood_average;
  return h(
    "section.card",
    { "aria-labelledby": "eval-title" },
    h("h2", { id: "eval-title" }, "Evaluation per split"),
    ood ? h("p", `Out-of-domain average over ${ood.splits.join(", ")}: accuracy ${pct(ood.accuracy)}, macro-F1 ${f3(ood.macro_f1)}.`) : null,
    h("div.toolbar", field("Split", pick)),
    body,
  );
}

function spectrumSection(head) {
  const splits = Object.keys(head.spectra || {});
  if (!splits.length) return null;
  const pick = h("select", { name: "spectrum-split" }, splits.map((sp) => h("option", { value: sp, selected: sp === "test" }, sp)));
  const body = h("div.spec-body");
  const show = () => {
    const sp = head.spectra[pick.value];
    const pts = (vals) => (vals || []).map((v, i) => [i + 1, v]);
    clear(body).append(
      h(
        "div.two",
        lineChart({
          series: [
            { name: "raw backbone features", points: pts(sp.raw.singular_values) },
            { name: "adapted features", points: pts(sp.adapted.singular_values), dash: "5 3" },
          ],
          title: `Singular values, split ${pick.value} (log scale)`,
          xLabel: "index (largest first)",
          yLabel: "singular value",
          logY: true,
          integerX: true,
        }),
        table(
          [
            { label: "", cell: (r) => r[0] },
            { label: "raw", cls: "num", cell: (r) => r[1](sp.raw) },
            { label: "adapted", cls: "num", cell: (r) => r[1](sp.adapted) },
          ],
          [
            ["SVE (entropy)", (x) => num(x.sve)],
            ["LSVR", (x) => num(x.lsvr)],
            ["effective rank", (x) => num(x.effective_rank, 1)],
            ["features", (x) => String(x.n_features)],
            ["samples", (x) => String(x.n_samples)],
          ],
          { caption: "SVE: singular value entropy (higher: spread over more directions). LSVR: −log(s₁ / Σs)." },
        ),
      ),
    );
  };
  pick.addEventListener("change", show);
  show();
  return h(
    "section.card",
    { "aria-labelledby": "spec-title" },
    h("h2", { id: "spec-title" }, "Spectrum: raw vs adapted features"),
    ["lr", "lp"].includes(head.config?.method_used || head.method)
      ? h("p.hint", "A linear head (lr, lp) has no feature transform: its adapted features are the raw ones.")
      : null,
    h("div.toolbar", field("Split", pick)),
    body,
  );
}

function predictSection(head, ctx) {
  const input = h("textarea", { name: "inputs", rows: 3, required: true, spellcheck: "true" });
  const topk = h("input", { type: "number", name: "top_k", min: 1, max: Math.max(1, (head.classes || []).length), value: Math.min(3, (head.classes || []).length || 1) });
  const out = h("div", { id: "predictions", "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Predict");
  const form = h(
    "form.card",
    { "aria-labelledby": "try-title" },
    h("h2", { id: "try-title" }, "Try it"),
    field("Inputs, one per line", input, "Each line is embedded through the head's backbone (cached) and classified."),
    field("Classes to show per input", topk),
    submit,
    out,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const inputs = input.value.split("\n").map((l) => l.trim()).filter(Boolean);
    if (!inputs.length) return;
    submit.disabled = true;
    try {
      const res = await api.post(`/v1/heads/${encodeURIComponent(head.id)}/predict`, { inputs, top_k: Number(topk.value) || undefined });
      ctx.hideError();
      clear(out).append(
        table(
          [
            { label: "input", cell: (r) => r.input },
            { label: "predicted", cell: (r) => h("strong.pred", String(r.p.label)) },
            { label: "probability", cls: "num", cell: (r) => bar(r.p.probability) },
            { label: "scores", cell: (r) => r.p.scores.map((sc) => `${sc.label}: ${sc.probability.toFixed(3)}`).join(", ") },
          ],
          res.predictions.map((p, i) => ({ input: inputs[i], p })),
          { caption: "Predictions" },
        ),
      );
      ctx.announce(`${res.predictions.length} predictions`);
    } catch (err) {
      ctx.showError(err);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function headPage(host, ctx, headId) {
  const path = `/v1/heads/${encodeURIComponent(headId)}`;
  const [head, feats] = await Promise.all([api.get(path, null, { signal: ctx.signal }), features()]);
  if (ctx.signal.aborted) return;
  document.title = `Head ${head.name || head.id} · nmtune`;
  const cfg = head.config || {};
  const actions = h("div.actions");
  if (feats.headExport && head.status === "ready") {
    actions.append(
      h("button.small", {
        type: "button",
        onclick: () => download(feats.headExport.replace(/\{[^}]+\}/, encodeURIComponent(head.id)), `${head.id}.zip`).catch(ctx.showError),
      }, "Export (.zip)"),
    );
  }
  actions.append(
    h("button.danger.small", {
      type: "button",
      onclick: async () => {
        if (!window.confirm(`Delete head ${head.name || head.id}?`)) return;
        try {
          await api.del(path);
          ctx.announce("Head deleted");
          ctx.navigate(head.dataset_id ? `#/heads?dataset=${head.dataset_id}` : "#/heads");
        } catch (err) {
          ctx.showError(err);
        }
      },
    }, "Delete head"),
  );
  host.append(
    h("p.crumbs", h("a", { href: head.dataset_id ? `#/heads?dataset=${encodeURIComponent(head.dataset_id)}` : "#/heads" }, "← Heads")),
    h("h1", `Head ${head.name || shortId(head.id)} `, badge(head.status)),
    h(
      "section.card",
      { "aria-label": "Summary" },
      dl([
        ["id", h("code", head.id)],
        ["dataset", head.dataset_id ? h("a", { href: `#/heads?dataset=${encodeURIComponent(head.dataset_id)}` }, head.dataset_id) : "(deleted)"],
        ["method", head.method === "auto" && cfg.method_used ? `auto → ${cfg.method_used}` : head.method],
        ["preset", head.method === "lr" ? "–" : head.preset],
        ["backbone", head.backbone],
        ["dimension", head.dim ? String(head.dim) : null],
        ["classes", head.classes ? head.classes.join(", ") : null],
        ["selection", cfg.selection?.description || cfg.validation || null],
        ["best epoch", cfg.best_epoch !== undefined ? String(cfg.best_epoch) : null],
        ["training time", cfg.timings_s ? `${secs(cfg.timings_s.train)} (embedding ${secs(cfg.timings_s.embed)})` : null],
        ["overrides", Object.keys(head.overrides || {}).length ? h("code", JSON.stringify(head.overrides)) : null],
        ["created", when(head.created_at)],
        ["trained", head.trained_at ? when(head.trained_at) : null],
      ]),
      actions,
    ),
  );
  const training = h("section.card", { "aria-labelledby": "train-title" }, h("h2", { id: "train-title" }, "Training"));
  host.append(training);
  if (head.job_id) {
    const state = h("div");
    const charts = h("div");
    training.append(state, charts);
    const cancel = async (job) => {
      try {
        await api.post(`/v1/jobs/${encodeURIComponent(job.id)}/cancel`);
        ctx.announce("Cancel requested");
      } catch (err) {
        ctx.showError(err);
      }
    };
    let lastEpochs = -1;
    let lastStatus = null;
    const paint = (job) => {
      clear(state).append(jobPanel(job, ctx, () => cancel(job)));
      if (job.epochs.length !== lastEpochs) {
        clear(charts).append(curves(job.epochs));
        lastEpochs = job.epochs.length;
      }
      if (job.status !== lastStatus) ctx.announce(`Job ${job.status}${job.stage ? `, stage ${job.stage}` : ""}`);
      lastStatus = job.status;
    };
    const first = await api.get(`/v1/jobs/${encodeURIComponent(head.job_id)}`, null, { signal: ctx.signal });
    if (ctx.signal.aborted) return;
    paint(first);
    if (!TERMINAL.has(first.status)) {
      // live: the SSE stream until the job ends, then the finished head is shown
      streamJob(head.job_id, paint, ctx.signal)
        .then(() => {
          if (!ctx.signal.aborted) {
            clear(host);
            return headPage(host, ctx, headId);
          }
          return null;
        })
        .catch((err) => {
          if (err.name !== "AbortError") ctx.showError(err);
        });
    }
  } else {
    training.append(h("p.empty", "No training job recorded."));
  }
  if (head.status !== "ready") {
    host.append(
      h(
        "p.hint",
        head.status === "pending"
          ? "Evaluation, spectra and predictions appear here when the head is trained."
          : `This head is ${head.status}: it was not trained (the job above says why). Train a new one from the heads page.`,
      ),
    );
    return;
  }
  host.append(
    ...[candidatesSection(head), evaluationSection(head), spectrumSection(head), predictSection(head, ctx)].filter(Boolean),
  );
}
