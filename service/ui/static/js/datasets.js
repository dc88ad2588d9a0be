// Datasets: list with counts per split and label, drag-and-drop upload, delete.
import { api, features, listAll } from "./api.js";
import { h, clear, field, table, when, shortId } from "./dom.js";

function splitSummary(ds) {
  return h(
    "ul.splits",
    Object.entries(ds.splits).map(([name, sp]) => h("li", h("code", name), ` ${sp.count}`)),
  );
}

function labelTable(ds) {
  const splits = Object.keys(ds.splits);
  const labels = ds.classes.map(String);
  return table(
    [
      { label: "label", cell: (l) => l },
      ...splits.map((sp) => ({ label: sp, cls: "num", cell: (l) => String(ds.splits[sp].labels[l] ?? 0) })),
    ],
    labels,
    { caption: `Examples per label and split in ${ds.name}` },
  );
}

function uploadForm(ctx, onDone) {
  const name = h("input", { type: "text", name: "name", required: true, maxlength: 200, autocomplete: "off" });
  const file = h("input", { type: "file", name: "file", accept: ".jsonl,.json,.csv,.ndjson,application/json,text/csv" });
  const chosen = h("span.chosen", "No file chosen.");
  const zone = h(
    "div.dropzone",
    { tabindex: "0", role: "button", "aria-label": "Drop a JSONL or CSV file here, or press Enter to choose one" },
    h("strong", "Drop a JSONL or CSV file here"),
    h("span", " or press to choose one."),
    h("br"),
    chosen,
  );
  let picked = null;
  const pick = (f) => {
    picked = f;
    chosen.textContent = f ? `${f.name} (${f.size.toLocaleString()} bytes)` : "No file chosen.";
    if (f && !name.value) name.value = f.name.replace(/\.[^.]+$/, "");
  };
  file.addEventListener("change", () => pick(file.files[0] || null));
  zone.addEventListener("click", () => file.click());
  zone.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      file.click();
    }
  });
  zone.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    const f = ev.dataTransfer && ev.dataTransfer.files[0];
    if (f) pick(f);
  });
  const submit = h("button", { type: "submit" }, "Upload");
  const form = h(
    "form.card",
    { "aria-labelledby": "upload-title" },
    h("h2", { id: "upload-title" }, "Upload a dataset"),
    h(
      "p.hint",
      "JSONL: one ",
      h("code", '{"text": …, "label": …, "split": …}'),
      " per line. CSV: columns ",
      h("code", "text,label,split"),
      ". Splits: train, validation, test, ood:<name>, validation:ood:<name>.",
    ),
    field("Dataset name", name),
    zone,
    h("div.visually-hidden", field("File", file)),
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (!picked) {
      ctx.showError(new Error("choose a file to upload first"));
      zone.focus();
      return;
    }
    const fd = new FormData();
    fd.append("name", name.value.trim());
    fd.append("file", picked, picked.name);
    submit.disabled = true;
    submit.textContent = "Uploading…";
    try {
      const ds = await api.upload("/v1/datasets/upload", fd);
      ctx.hideError();
      ctx.announce(`Dataset ${ds.name} uploaded: ${ds.n_examples} examples`);
      name.value = "";
      file.value = "";
      pick(null);
      await onDone(ds);
    } catch (err) {
      ctx.showError(err);
    } finally {
      submit.disabled = false;
      submit.textContent = "Upload";
    }
  });
  return form;
}

export async function datasetsPage(host, ctx) {
  document.title = "Datasets · nmtune";
  const listBox = h("section", { "aria-labelledby": "ds-title" });
  const feats = await features();
  const refresh = async () => {
    const items = await listAll("/v1/datasets");
    if (ctx.signal.aborted) return;
    clear(listBox).append(
      h("h2", { id: "ds-title" }, `Your datasets (${items.length})`),
      table(
        [
          { label: "name", cell: (d) => d.name },
          { label: "id", cell: (d) => h("code", { title: d.id }, shortId(d.id)) },
          { label: "kind", cell: (d) => `${d.modality}, ${d.label_kind} labels` },
          { label: "examples", cls: "num", cell: (d) => d.n_examples.toLocaleString() },
          { label: "classes", cls: "num", cell: (d) => String(d.classes.length) },
          { label: "splits", cell: splitSummary },
          { label: "created", cell: (d) => when(d.created_at) },
          {
            label: "actions",
            cell: (d) =>
              h(
                "div.actions",
                h("a.button.small", { href: `#/heads?dataset=${encodeURIComponent(d.id)}`, "aria-label": `Heads of ${d.name}` }, "Heads"),
                feats.audits
                  ? h("a.button.small", { href: `#/audits?dataset=${encodeURIComponent(d.id)}`, "aria-label": `Label audits of ${d.name}` }, "Audit labels")
                  : null,
                h("button.danger.small", { type: "button", "aria-label": `Delete dataset ${d.name}`, onclick: () => remove(d) }, "Delete"),
              ),
          },
        ],
        items,
        { caption: "Datasets of this API key's tenant, newest first", empty: "No datasets yet: upload one above." },
      ),
      items.length ? h("h3", "Counts per label and split") : null,
      ...items.map((d) => h("details.labels", h("summary", `${d.name} `, h("code", shortId(d.id))), labelTable(d))),
    );
  };
  const remove = async (d) => {
    if (!window.confirm(`Delete dataset "${d.name}" and its examples? Heads trained on it keep working.`)) return;
    try {
      await api.del(`/v1/datasets/${encodeURIComponent(d.id)}`);
      ctx.announce(`Dataset ${d.name} deleted`);
      await refresh();
    } catch (err) {
      ctx.showError(err);
    }
  };
  host.append(h("h1", "Datasets"), uploadForm(ctx, refresh), listBox);
  await refresh();
}
