// The dashboard shell: sign-in, hash routes (#/datasets, #/heads, #/heads/<id>, #/jobs),
// one alert region for errors and one polite status region for progress messages.
import { api, ApiError, features, session } from "./api.js";
import { auditPage, auditsPage } from "./audits.js";
import { h, clear, field } from "./dom.js";
import { datasetsPage } from "./datasets.js";
import { headsPage } from "./heads.js";
import { headPage } from "./head.js";
import { jobsPage } from "./jobs.js";

const main = document.getElementById("main");
const alertBox = document.getElementById("alert");
const statusBox = document.getElementById("status");
let current = null; // AbortController of the page on screen
let keepError = false; // an error that sent the user to another page stays on screen

export function showError(err) {
  const msg = err instanceof ApiError ? `${err.type}: ${err.message}` : String(err && err.message ? err.message : err);
  clear(alertBox).append(h("span", msg), h("button.secondary.small", { type: "button", onclick: hideError, "aria-label": "Dismiss the error" }, "Dismiss"));
  alertBox.hidden = false;
  if (err instanceof ApiError && err.status === 401 && location.hash !== "#/signin") {
    session.key = null; // revoked or expired: sign in again, the message stays
    keepError = true;
    location.hash = "#/signin";
  }
}

export function hideError() {
  alertBox.hidden = true;
  clear(alertBox);
}

export function announce(text) {
  statusBox.textContent = text;
}

/** The page context handed to each page: where to render, cancellation, helpers. */
function pageContext(signal, query) {
  return { signal, query, showError, announce, hideError, navigate: (hash) => (location.hash = hash) };
}

function signinPage(ctx) {
  const input = h("input", { type: "password", name: "api-key", autocomplete: "off", required: true, spellcheck: "false", placeholder: "nmt_…" });
  const form = h(
    "form.card.narrow",
    { "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in"),
    h("p", "Paste an API key (made with ", h("code", "nmtune keys create --tenant NAME"), "). It stays in this browser tab only and is sent with every request as the Bearer token."),
    field("API key", input),
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = input.value.trim();
    if (!key) return;
    session.key = key;
    try {
      await api.get("/v1/backbones"); // any authenticated call checks the key
      hideError();
      announce("Signed in");
      ctx.navigate("#/datasets");
    } catch (err) {
      session.key = null;
      showError(err instanceof ApiError && err.status === 401 ? new ApiError(401, { error: "Unauthorized", detail: `sign-in failed: ${err.message}` }) : err);
      input.focus();
    }
  });
  setTimeout(() => input.focus(), 0);
  return form;
}

const routes = [
  [/^#\/datasets$/, datasetsPage],
  [/^#\/heads$/, headsPage],
  [/^#\/heads\/([A-Za-z0-9_-]+)$/, headPage],
  [/^#\/jobs$/, jobsPage],
  [/^#\/audits$/, auditsPage],
  [/^#\/audits\/([A-Za-z0-9_-]+)\/([A-Za-z0-9_-]+)$/, auditPage],
];

async function render() {
  if (current) current.abort();
  current = new AbortController();
  const [path, qs] = (location.hash || "#/datasets").split("?");
  const ctx = pageContext(current.signal, new URLSearchParams(qs || ""));
  let hash = path;
  const signedIn = Boolean(session.key);
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  if (signedIn) document.getElementById("who-text").textContent = `key …${session.key.slice(-4)}`;
  if (!signedIn && hash !== "#/signin") {
    location.replace("#/signin");
    return;
  }
  if (signedIn && hash === "#/signin") {
    location.replace("#/datasets");
    return;
  }
  for (const a of document.querySelectorAll("#nav a")) {
    const active = hash.startsWith(`#/${a.dataset.page}`);
    if (active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  clear(main);
  if (hash === "#/signin") {
    document.title = "Sign in · nmtune";
    main.append(signinPage(ctx));
    return;
  }
  for (const [re, page] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    const host = h("div.page");
    main.append(host);
    try {
      await page(host, ctx, ...m.slice(1));
    } catch (err) {
      if (err && err.name === "AbortError") return;
      showError(err);
    }
    return;
  }
  main.append(h("h1", "Not found"), h("p", "No such page. ", h("a", { href: "#/datasets" }, "Go to the datasets.")));
}

document.getElementById("signout").addEventListener("click", () => {
  session.key = null;
  hideError();
  location.hash = "#/signin";
});
window.addEventListener("hashchange", () => {
  if (keepError) keepError = false;
  else hideError();
  render();
  main.focus({ preventScroll: true });
});
window.addEventListener("unhandledrejection", (ev) => {
  if (ev.reason && ev.reason.name === "AbortError") {
    ev.preventDefault();
    return;
  }
  showError(ev.reason);
});
render();
// pages of optional API features appear in the navigation only where the server has them
features().then((f) => {
  document.getElementById("nav-audits").hidden = !f.audits;
});
