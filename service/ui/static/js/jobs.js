// Jobs: a live list with stage, progress and cancel. Uses GET /v1/jobs where the server has
// it; otherwise the jobs of this tenant's heads (GET /v1/heads, then GET /v1/jobs/{id}).
import { api, features, listAll } from "./api.js";
import { h, clear, table, badge, when, shortId, progressBar } from "./dom.js";

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const POLL_MS = 1500;

async function loadJobs(feats, known) {
  if (feats.jobList) return listAll("/v1/jobs", {}, 100);
  const heads = await listAll("/v1/heads", {}, 200);
  const ids = heads.map((hd) => hd.job_id).filter(Boolean);
  // finished jobs do not change: fetch only the new and the unfinished ones
  const jobs = await Promise.all(
    ids.map((id) => (known.has(id) && TERMINAL.has(known.get(id).status) ? known.get(id) : api.get(`/v1/jobs/${encodeURIComponent(id)}`))),
  );
  return jobs;
}

export async function jobsPage(host, ctx) {
  document.title = "Jobs · nmtune";
  const feats = await features();
  const box = h("div");
  const note = feats.jobList
    ? "All jobs of this tenant, refreshed every few seconds."
    : "Jobs of this tenant's heads (training), refreshed every few seconds (this server has no GET /v1/jobs).";
  host.append(h("h1", "Jobs"), h("p.hint", note), box);
  const known = new Map();
  const cancel = async (job) => {
    try {
      await api.post(`/v1/jobs/${encodeURIComponent(job.id)}/cancel`);
      ctx.announce(`Cancel requested for ${job.id}`);
      await tick(false);
    } catch (err) {
      ctx.showError(err);
    }
  };
  const paint = (jobs) => {
    clear(box).append(
      table(
        [
          { label: "job", cell: (j) => h("code", { title: j.id }, shortId(j.id)) },
          { label: "kind", cell: (j) => j.kind },
          {
            label: "for",
            cell: (j) =>
              j.head_id
                ? h("a", { href: `#/heads/${j.head_id}` }, `head ${shortId(j.head_id)}`)
                : j.dataset_id && j.kind === "audit"
                  ? h("a", { href: `#/audits?dataset=${encodeURIComponent(j.dataset_id)}` }, `audits of ${shortId(j.dataset_id)}`)
                  : j.dataset_id
                    ? `dataset ${shortId(j.dataset_id)}`
                    : "–",
          },
          { label: "method", cell: (j) => j.params?.method || "–" },
          { label: "status", cell: (j) => badge(j.status) },
          { label: "stage", cell: (j) => j.stage || "–" },
          { label: "progress", cell: (j) => progressBar(j.progress.done, j.progress.total, `progress of ${j.id}`) },
          { label: "created", cell: (j) => when(j.created_at) },
          {
            label: "actions",
            cell: (j) =>
              !TERMINAL.has(j.status) && !j.cancel_requested
                ? h("button.danger.small", { type: "button", "aria-label": `Cancel job ${j.id}`, onclick: () => cancel(j) }, "Cancel")
                : j.cancel_requested && !TERMINAL.has(j.status)
                  ? "cancelling…"
                  : "",
          },
        ],
        jobs,
        { caption: "Newest first", empty: "No jobs yet." },
      ),
    );
  };
  let timer = null;
  const tick = async (again = true) => {
    if (ctx.signal.aborted) return;
    try {
      const jobs = await loadJobs(feats, known);
      if (ctx.signal.aborted) return;
      jobs.sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
      for (const j of jobs) known.set(j.id, j);
      paint(jobs);
    } catch (err) {
      if (ctx.signal.aborted) return;
      ctx.showError(err);
      if (err.status === 401) return; // signed out: the sign-in page takes over
      // throttled (429) or the server is busy (503): try again later, not at once
      if (again) timer = setTimeout(tick, Math.max(POLL_MS, 1000 * (err.retryAfter || 5)));
      return;
    }
    if (again) timer = setTimeout(tick, POLL_MS);
  };
  ctx.signal.addEventListener("abort", () => clearTimeout(timer));
  await tick();
}
