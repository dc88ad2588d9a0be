// The comparison table across heads of one dataset: ID and each OOD split's accuracy and
// macro-F1, training time; the best value of each column is marked.

/** The in-domain split a head is scored on: test, else validation, else train. */
export function idSplit(metrics) {
  for (const sp of ["test", "validation", "train"]) if (metrics && metrics[sp]) return sp;
  return null;
}

export function oodSplits(heads) {
  const out = new Set();
  for (const hd of heads) for (const k of Object.keys(hd.metrics || {})) if (k.startsWith("ood:")) out.add(k);
  return [...out].sort();
}

/**
 * Columns of the comparison: [{key, label, get(head) -> number|null, better: "max"|"min"}].
 */
export function compareColumns(heads) {
  const cols = [];
  const metric = (sp, m) => (hd) => {
    const split = sp === "ID" ? idSplit(hd.metrics) : sp;
    const v = split && hd.metrics && hd.metrics[split] ? hd.metrics[split][m] : null;
    return typeof v === "number" ? v : null;
  };
  for (const sp of ["ID", ...oodSplits(heads)]) {
    cols.push({ key: `${sp}/accuracy`, split: sp, label: "accuracy", get: metric(sp, "accuracy"), better: "max", fmt: "pct" });
    cols.push({ key: `${sp}/macro_f1`, split: sp, label: "macro-F1", get: metric(sp, "macro_f1"), better: "max", fmt: "f1" });
  }
  if (oodSplits(heads).length > 1) {
    cols.push({ key: "ood_average/accuracy", split: "OOD average", label: "accuracy", get: (hd) => hd.metrics?.ood_average?.accuracy ?? null, better: "max", fmt: "pct" });
  }
  cols.push({
    key: "train_s",
    split: "time",
    label: "training (s)",
    get: (hd) => hd.config?.timings_s?.train ?? null,
    better: "min",
    fmt: "s",
  });
  return cols;
}

/** For each column key, the best value (ties all count as best). */
export function bestOf(heads, cols) {
  const best = {};
  for (const c of cols) {
    const vals = heads.map(c.get).filter((v) => typeof v === "number");
    if (vals.length < 2) continue; // nothing to compare
    best[c.key] = c.better === "max" ? Math.max(...vals) : Math.min(...vals);
  }
  return best;
}
