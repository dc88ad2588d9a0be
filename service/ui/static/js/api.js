// The public REST API, called with the API key of this browser session (sessionStorage).

const KEY = "nmtune.apiKey";

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail ? body.detail : `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.type = (body && body.error) || "HTTPError";
    this.field = (body && body.field) || null;
  }
}

export const session = {
  get key() {
    return sessionStorage.getItem(KEY);
  },
  set key(value) {
    if (value) sessionStorage.setItem(KEY, value);
    else sessionStorage.removeItem(KEY);
  },
};

function headers(extra) {
  const out = { Accept: "application/json", ...extra };
  if (session.key) out.Authorization = `Bearer ${session.key}`;
  return out;
}

async function parse(resp) {
  if (resp.status === 204) return null;
  const type = resp.headers.get("content-type") || "";
  const body = type.includes("json") ? await resp.json() : await resp.text();
  if (!resp.ok) {
    const err = new ApiError(resp.status, typeof body === "object" ? body : { detail: body });
    err.retryAfter = Number(resp.headers.get("retry-after")) || null; // 429 / 503
    throw err;
  }
  return body;
}

export async function request(method, path, { json, form, query, signal } = {}) {
  let url = path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
    const qs = q.toString();
    if (qs) url += `?${qs}`;
  }
  const init = { method, headers: headers(), signal };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form) {
    init.body = form;
  }
  return parse(await fetch(url, init));
}

export const api = {
  get: (path, query, opts) => request("GET", path, { query, ...opts }),
  post: (path, json) => request("POST", path, { json }),
  upload: (path, form) => request("POST", path, { form }),
  del: (path) => request("DELETE", path),
};

/**
 * Every item of a paginated list, at most `max`: offset pages ({items, total}) or cursor
 * pages ({items, has_more, next_after}), 200 items a request.
 */
export async function listAll(path, query = {}, max = 1000, pageSize = 200) {
  const items = [];
  let offset = 0;
  let after = null;
  while (items.length < max) {
    const cursor = after ? { after } : offset ? { offset } : {};
    const page = await api.get(path, { ...query, limit: Math.min(pageSize, max - items.length), ...cursor });
    items.push(...page.items);
    if (!page.items.length) break;
    if ("has_more" in page) {
      if (!page.has_more || !page.next_after) break;
      after = page.next_after;
    } else {
      if (items.length >= page.total) break;
      offset = items.length;
    }
  }
  return items;
}

/** A file download that needs the Authorization header: fetch, then save the blob. */
export async function download(path, fallbackName) {
  const resp = await fetch(path, { headers: headers({ Accept: "*/*" }) });
  if (!resp.ok) await parse(resp);
  const blob = await resp.blob();
  const disp = resp.headers.get("content-disposition") || "";
  const m = /filename="?([^";]+)"?/.exec(disp);
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = m ? m[1] : fallbackName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

/**
 * Server-sent events of a job (GET /v1/jobs/{id}/events). EventSource cannot send the
 * Authorization header, so the stream is read with fetch. Calls onJob(job) for each `job`
 * event; resolves when the stream ends (the job finished) or `signal` aborts.
 */
export async function streamJob(jobId, onJob, signal) {
  const resp = await fetch(`/v1/jobs/${encodeURIComponent(jobId)}/events`, {
    headers: headers({ Accept: "text/event-stream" }),
    signal,
  });
  if (!resp.ok) await parse(resp);
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (event === "job" && data.length) onJob(JSON.parse(data.join("\n")));
      if (event === "end") return;
    }
  }
}

let spec = null;
/** Which optional routes this server has (read from its /openapi.json once). */
export async function features() {
  if (!spec) {
    const doc = await fetch("/openapi.json").then((r) => (r.ok ? r.json() : { paths: {} }));
    const paths = doc.paths || {};
    const find = (re, method) => Object.keys(paths).find((p) => re.test(p) && paths[p][method]);
    spec = {
      jobList: Boolean(paths["/v1/jobs"] && paths["/v1/jobs"].get),
      headExport: find(/^\/v1\/heads\/\{[^}]+\}\/export$/, "get") || null,
      audits: Boolean(find(/^\/v1\/datasets\/\{[^}]+\}\/audits$/, "get")),
      methods: (((doc.components || {}).schemas || {}).HeadCreate || {}).properties?.method?.enum || [
        "lr",
        "lp",
        "mlp",
        "nmtune",
        "auto",
      ],
    };
  }
  return spec;
}
