"""The dashboard in a real browser: sign in, upload, train, watch, compare, inspect,
predict; a wrong key; tenant isolation; jobs; no console errors."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from nmtune.service.auth.service import create_key, revoke_key
from tests.service.conftest import sentiment_records, wait_job
from tests.ui.harness import FAST, ConsoleLog, UiServer, sign_in, watch_console

pytestmark = pytest.mark.slow

TERMINAL = ("succeeded", "failed", "cancelled")


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _drop_file(page: Any, selector: str, name: str, text: str) -> None:
    """A real drop event on the drop zone, carrying a File (as a drag from the desktop)."""
    dt = page.evaluate_handle(
        """([name, text]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([text], name, {type: "application/x-ndjson"}));
            return dt;
        }""",
        [name, text],
    )
    page.dispatch_event(selector, "dragover", {"dataTransfer": dt})
    page.dispatch_event(selector, "drop", {"dataTransfer": dt})


def _train(page: Any, method: str, overrides: dict[str, Any], name: str) -> str:
    """Fill the train form on the heads page; returns the new head's id (from the URL)."""
    page.get_by_label("Method").select_option(method)
    page.get_by_label("Backbone").select_option("minilm")
    page.get_by_label("Name (optional)").fill(name)
    page.get_by_label("Overrides").fill(json.dumps(overrides))
    page.get_by_role("button", name="Train").click()
    page.wait_for_url("**/ui/#/heads/hd_*")
    return str(page.url.rsplit("/", 1)[1])


def _watch_until_done(page: Any, timeout: float = 240) -> list[str]:
    """The job panel's status as the page shows it, until it is terminal (no reload)."""
    seen: list[str] = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = page.locator("#job-state").get_attribute("data-status", timeout=30_000)
        if not seen or seen[-1] != st:
            seen.append(str(st))
        if st in TERMINAL:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"job still not done in the page: {seen}")


def test_wrong_key_shows_error(ui: UiServer, page_log: tuple[Any, ConsoleLog]) -> None:
    page, log = page_log
    log.allow_status(401)  # the browser logs the rejected request itself
    page.goto(f"{ui.base_url}/ui/")
    page.get_by_label("API key").fill("nmt_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Unauthorized" in alert.inner_text()
    assert "invalid or revoked API key" in alert.inner_text()
    assert page.get_by_role("navigation", name="Main").is_hidden()
    assert page.evaluate("sessionStorage.getItem('nmtune.apiKey')") is None
    assert not log.unexpected(), log.unexpected()


def test_revoked_key_sends_back_to_sign_in(ui: UiServer, page_log: tuple[Any, ConsoleLog]) -> None:
    page, log = page_log
    log.allow_status(401)
    with ui.db.session() as s:
        made = create_key(s, ui.tenant_a, name="short-lived")
    sign_in(page, ui.base_url, made.key)
    with ui.db.session() as s:
        assert revoke_key(s, made.key_id)
    page.get_by_role("link", name="Heads", exact=True).click()
    page.get_by_role("heading", name="Sign in").wait_for()
    alert = page.get_by_role("alert")
    assert "invalid or revoked API key" in alert.inner_text()  # the reason stays visible
    assert page.evaluate("sessionStorage.getItem('nmtune.apiKey')") is None
    assert not log.unexpected(), log.unexpected()


def test_upload_train_watch_compare_predict(ui: UiServer, page_log: tuple[Any, ConsoleLog]) -> None:
    page, log = page_log
    sign_in(page, ui.base_url, ui.key_a)
    assert page.evaluate("sessionStorage.getItem('nmtune.apiKey')") == ui.key_a

    # upload by drag and drop
    page.get_by_label("Dataset name").fill("reviews-ui")
    _drop_file(page, ".dropzone", "reviews.jsonl", _jsonl(sentiment_records()))
    assert "reviews.jsonl" in page.locator(".dropzone").inner_text()
    page.get_by_role("button", name="Upload").click()
    row = page.locator("table tbody tr", has_text="reviews-ui")
    row.wait_for()
    assert "train 36" in row.inner_text() and "ood:tweets 16" in row.inner_text()
    labels = page.locator("details.labels", has_text="reviews-ui")
    labels.locator("summary").click()
    assert "8" in labels.locator("table").inner_text()  # 8 neg / 8 pos in ood:tweets

    # train a head from the heads page of this dataset, and watch it live
    row.get_by_role("link", name="Heads of reviews-ui").click()
    page.get_by_role("heading", name="Train a head").wait_for()
    nm_id = _train(page, "nmtune", FAST, "nmtune-fast")
    seen = _watch_until_done(page)
    assert seen[0] in ("queued", "running"), seen  # the page showed it before it finished
    assert seen[-1] == "succeeded", seen
    # the finished head replaces the live view: curves, evaluation, spectrum, predict
    page.get_by_role("heading", name="Evaluation per split").wait_for()
    assert page.locator("svg.chart path").count() >= 2  # loss and validation curves
    heat = page.locator("#confusion svg")
    assert heat.locator("rect").count() == 4  # 2 x 2 classes
    assert "predicted" in heat.inner_html()
    page.get_by_role("heading", name="Spectrum: raw vs adapted features").wait_for()

    # predict
    page.get_by_label("Inputs, one per line").fill(
        "I loved it, wonderful\nterrible, a waste of time"
    )
    page.get_by_role("button", name="Predict").click()
    preds = page.locator("#predictions tbody tr")
    preds.nth(1).wait_for()
    assert preds.count() == 2
    assert preds.nth(0).locator("strong.pred").inner_text() == "pos"
    assert preds.nth(1).locator("strong.pred").inner_text() == "neg"

    # export download (GET /v1/heads/{id}/export, with the session's key)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export").click()
    assert dl.value.suggested_filename == f"{nm_id}.zip"
    with zipfile.ZipFile(dl.value.path()) as zf:
        assert "head.json" in zf.namelist()

    # a second head, then the comparison across the dataset's heads
    page.get_by_role("link", name="← Heads").click()
    page.get_by_role("heading", name="Train a head").wait_for()
    lr_id = _train(page, "lr", {}, "lr-cv")
    assert _watch_until_done(page)[-1] == "succeeded"
    page.get_by_role("link", name="← Heads").click()
    table = page.locator("#compare")
    table.wait_for()
    text = table.inner_text()
    for needle in ("nmtune-fast", "lr-cv", "ID (test)", "ood:tweets", "accuracy", "macro-F1"):
        assert needle in text, (needle, text)
    assert table.locator("tbody tr").count() == 2
    assert table.locator("td.best").count() >= 1  # best per column marked
    assert "(best)" in table.inner_text()
    # both heads are linked from it
    assert table.locator(f"a[href='#/heads/{nm_id}']").count() == 1
    assert table.locator(f"a[href='#/heads/{lr_id}']").count() == 1

    # delete the lr head from its page (after the browser's confirm dialog)
    table.locator(f"a[href='#/heads/{lr_id}']").click()
    page.get_by_role("heading", name="Evaluation per split").wait_for()
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete head").click()
    page.locator("#compare").wait_for()
    assert page.locator("#compare tbody tr").count() == 1
    assert ui.client(ui.key_a).get(f"/v1/heads/{lr_id}").status_code == 404
    assert not log.unexpected(), log.unexpected()


def _no_horizontal_scroll(page: Any) -> bool:
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def test_tenant_b_sees_nothing_of_tenant_a(ui: UiServer, page_log: tuple[Any, ConsoleLog]) -> None:
    page, log = page_log
    a = ui.client(ui.key_a)
    r = a.post("/v1/datasets", json={"name": "secret-of-a", "records": sentiment_records(8)})
    assert r.status_code == 201, r.text
    ds_id = r.json()["id"]
    made = a.post("/v1/heads", json={"dataset_id": ds_id, "backbone": "minilm", "method": "lr"})
    assert made.status_code == 202, made.text
    head_id, job_id = made.json()["head"]["id"], made.json()["job"]["id"]
    assert wait_job(a, job_id)["status"] == "succeeded"

    sign_in(page, ui.base_url, ui.key_b)
    page.get_by_role("heading", name="Your datasets (0)").wait_for()
    assert "secret-of-a" not in page.content() and ds_id not in page.content()
    page.get_by_role("link", name="Heads", exact=True).click()
    page.get_by_role("heading", name="All heads (0)").wait_for()
    assert head_id not in page.content() and "secret-of-a" not in page.content()
    page.get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_text("No jobs yet.").wait_for()
    assert job_id not in page.content()

    # a direct link to A's head: the API answers 404 for B, and the page says so
    log.allow_status(404)
    page.goto(f"{ui.base_url}/ui/#/heads/{head_id}")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "NotFound" in alert.inner_text()
    assert page.get_by_role("heading", name="Training").count() == 0

    # while A, in its own tab, sees both
    other = page.context.browser.new_context()
    try:
        pa = other.new_page()
        sign_in(pa, ui.base_url, ui.key_a)
        pa.locator("table tbody tr", has_text="secret-of-a").wait_for()
        pa.goto(f"{ui.base_url}/ui/#/heads/{head_id}")
        pa.get_by_role("heading", name="Evaluation per split").wait_for()
    finally:
        other.close()
    assert not log.unexpected(), log.unexpected()


def test_cancel_from_the_jobs_page(ui: UiServer, page_log: tuple[Any, ConsoleLog]) -> None:
    page, log = page_log
    a = ui.client(ui.key_a)
    r = a.post("/v1/datasets", json={"name": "to-cancel", "records": sentiment_records(8)})
    ds_id = r.json()["id"]
    long = {"epochs": 400, "min_steps": 4000}  # minutes of training unless cancelled
    made = a.post(
        "/v1/heads",
        json={"dataset_id": ds_id, "backbone": "minilm", "method": "nmtune", "overrides": long},
    ).json()
    job_id = made["job"]["id"]
    sign_in(page, ui.base_url, ui.key_a)
    # its head page follows the training live (SSE): the reports grow without a reload
    page.goto(f"{ui.base_url}/ui/#/heads/{made['head']['id']}")
    page.locator("#job-state[data-status=running]").wait_for(timeout=120_000)
    reports = page.locator("p.hint", has_text="reports; last:")
    reports.wait_for(timeout=60_000)
    first = int(reports.inner_text().split()[0])
    page.wait_for_function(
        f"""() => {{
            const p = [...document.querySelectorAll('p.hint')].find(e =>
                e.textContent.includes('reports; last:'));
            return p && parseInt(p.textContent) > {first};
        }}""",
        timeout=60_000,
    )
    assert page.locator("svg.chart path").count() >= 2
    page.get_by_role("link", name="Jobs", exact=True).click()
    row = page.locator("tbody tr", has=page.locator(f"code[title='{job_id}']"))
    row.wait_for()
    cancel = page.get_by_role("button", name=f"Cancel job {job_id}")
    cancel.wait_for()
    cancel.click()
    row.locator(".badge", has_text="cancelled").wait_for(timeout=120_000)
    assert a.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
    page.goto(f"{ui.base_url}/ui/#/heads/{made['head']['id']}")
    page.get_by_text("This head is cancelled").wait_for()
    assert page.locator("#job-state").get_attribute("data-status") == "cancelled"
    assert not log.unexpected(), log.unexpected()


def test_keyboard_only_and_laptop_width(ui: UiServer, page_log: tuple[Any, ConsoleLog]) -> None:
    page, log = page_log
    page.set_viewport_size({"width": 1024, "height": 700})
    page.goto(f"{ui.base_url}/ui/")
    page.get_by_label("API key").wait_for()
    assert page.evaluate("document.activeElement.name") == "api-key"  # focus starts there
    page.keyboard.type(ui.key_a)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Datasets", level=1).wait_for()
    # Tab from the top of the page: the skip link first, then the navigation
    page.reload()  # the key survives a reload (sessionStorage)
    page.get_by_role("heading", name="Datasets", level=1).wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(8):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Heads":
            break
    assert page.evaluate("document.activeElement.textContent") == "Heads"
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Train a head").wait_for()
    assert _no_horizontal_scroll(page)
    for hash_ in ("#/datasets", "#/jobs"):
        page.goto(f"{ui.base_url}/ui/{hash_}")
        page.locator("main h1").wait_for()
        page.wait_for_timeout(300)
        assert _no_horizontal_scroll(page), hash_
    # the drop zone opens the file chooser from the keyboard too
    page.goto(f"{ui.base_url}/ui/#/datasets")
    zone = page.get_by_role(
        "button", name="Drop a JSONL or CSV file here, or press Enter to choose one"
    )
    page.wait_for_load_state("networkidle")  # the list has loaded: no re-render to come
    with page.expect_file_chooser() as chooser:
        zone.press("Enter")  # focuses the (current) drop zone, then presses Enter
    chooser.value.set_files(
        files=[{"name": "kb.jsonl", "mimeType": "application/x-ndjson", "buffer": b"{}\n"}]
    )
    assert "kb.jsonl" in zone.inner_text()
    # every form control has an accessible name
    page.goto(f"{ui.base_url}/ui/#/heads")
    page.get_by_role("heading", name="Train a head").wait_for()
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.textContent.trim())
            .map(el => el.outerHTML)"""
    )
    assert unnamed == []
    # sign out: the key leaves the tab
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in").wait_for()
    assert page.evaluate("sessionStorage.getItem('nmtune.apiKey')") is None
    assert not log.unexpected(), log.unexpected()


def test_comparison_marks_the_best_of_each_column(
    ui: UiServer, page_log: tuple[Any, ConsoleLog]
) -> None:
    """The dashboard's own comparison code on heads with known metrics: the highest score
    and the shortest time of each column are marked, ties all of them, one column group per
    OOD split."""
    page, log = page_log
    sign_in(page, ui.base_url, ui.key_a)
    marked = page.evaluate(
        """async () => {
            const { comparisonTable } = await import('/ui/js/heads.js');
            const m = (acc, f1) => ({ accuracy: acc, macro_f1: f1 });
            const head = (id, test, a, b, t) => ({
                id, name: id, status: 'ready', method: 'lp', preset: 'robust',
                backbone: 'minilm', config: { timings_s: { train: t } },
                metrics: { train: m(1, 1), test, 'ood:a': a, 'ood:b': b,
                           ood_average: { accuracy: (a.accuracy + b.accuracy) / 2 } },
            });
            const heads = [
                head('h1', m(0.9, 0.8), m(0.7, 0.6), m(0.5, 0.5), 3.0),
                head('h2', m(0.8, 0.85), m(0.7, 0.65), m(0.6, 0.4), 1.5),
                head('h3', m(0.85, 0.7), m(0.6, 0.6), m(0.55, 0.55), 9.0),
            ];
            const el = comparisonTable(heads, { name: 'x' });
            const top = el.querySelectorAll('thead tr:first-child th');
            const heads_ = [...top].map(e => e.textContent);
            const cols = [...el.querySelectorAll('thead tr:last-child th')].map(e => e.textContent);
            const rows = [...el.querySelectorAll('tbody tr')].map(tr => ({
                head: tr.querySelector('th').textContent,
                best: [...tr.querySelectorAll('td')].map((td, i) =>
                    td.classList.contains('best') ? cols[i + 1] : null).filter(Boolean),
                cells: [...tr.querySelectorAll('td.best')].length,
            }));
            return { groups: heads_, rows };
        }"""
    )
    assert marked["groups"] == ["ID (test)", "ood:a", "ood:b", "OOD average", "time"]
    by = {r["head"]: r for r in marked["rows"]}
    # columns after head: method, preset, backbone, then ID acc, ID F1, a acc, a F1, b acc,
    # b F1, OOD average acc, time
    assert by["h1"]["cells"] == 2  # ID accuracy 0.9, ood:a accuracy 0.7 (tie with h2)
    assert by["h2"]["cells"] == 6  # ID F1, ood:a acc (tie) + F1, ood:b acc, OOD avg, time
    assert by["h3"]["cells"] == 1  # ood:b macro-F1 0.55
    assert not log.unexpected(), log.unexpected()


def test_upload_error_and_delete(ui: UiServer, page_log: tuple[Any, ConsoleLog]) -> None:
    page, log = page_log
    a = ui.client(ui.key_a)
    sign_in(page, ui.base_url, ui.key_a)
    # a CSV with an empty text: the API's message (naming the record) is shown, nothing stored
    log.allow_status(422)
    page.get_by_label("Dataset name").fill("broken")
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": b"text,label\nok,pos\n,neg\n"}]
    )
    page.get_by_role("button", name="Upload").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "ValidationError: records[1].text" in alert.inner_text()
    assert all(d["name"] != "broken" for d in a.get("/v1/datasets").json()["items"])

    # delete, after confirming in the browser's dialog
    r = a.post("/v1/datasets", json={"name": "to-delete", "records": sentiment_records(4)})
    ds_id = r.json()["id"]
    page.reload()
    row = page.locator("table tbody tr", has_text="to-delete")
    row.wait_for()
    page.once("dialog", lambda d: d.accept())
    row.get_by_role("button", name="Delete dataset to-delete").click()
    row.wait_for(state="detached")
    assert a.get(f"/v1/datasets/{ds_id}").status_code == 404
    assert not log.unexpected(), log.unexpected()


def test_label_audit_page(ui: UiServer, page_log: tuple[Any, ConsoleLog]) -> None:
    """Start an audit from the dashboard, watch it finish, read the flagged examples (given
    vs suggested label, score), filter them by class, export them; tenant B sees none."""
    page, log = page_log
    a = ui.client(ui.key_a)
    recs = [dict(r, split="train") for r in sentiment_records(12, ood=False)]
    for i in (3, 10, 17):  # flipped labels the audit should find
        recs[i]["label"] = "neg" if recs[i]["label"] == "pos" else "pos"
    r = a.post("/v1/datasets", json={"name": "noisy-labels", "records": recs})
    assert r.status_code == 201, r.text
    ds_id = r.json()["id"]

    sign_in(page, ui.base_url, ui.key_a)
    page.get_by_role("link", name="Label audits of noisy-labels").click()
    page.get_by_role("heading", name="Audit the labels of noisy-labels").wait_for()
    page.get_by_label("Backbone").select_option("minilm")
    assert page.get_by_label("train").is_checked()
    page.get_by_role("button", name="Start audit").click()
    page.wait_for_url("**/ui/#/audits/*/*")
    audit_id = page.url.rsplit("/", 1)[1]
    page.get_by_role("heading", name="Flagged examples").wait_for(timeout=240_000)
    summary = page.locator("section", has=page.get_by_role("heading", name="Summary"))
    assert "examples flagged" in summary.inner_text()
    assert "agrees with" in page.locator("#audit-agreement").inner_text()

    rows = page.locator("#audit-examples tbody tr")
    detail = a.get(f"/v1/datasets/{ds_id}/audits/{audit_id}", params={"limit": 1000}).json()
    flagged = detail["examples"]["items"]
    assert flagged and rows.count() == len(flagged)
    # the estimated noise transition p(given | true) as a heat map, in %
    fig = page.locator("#audit-transition svg")
    assert "columns given labels" in (fig.get_attribute("aria-label") or "")
    cells = fig.locator("g text")
    trans = detail["summary"]["transition"]
    assert cells.count() == 4
    assert [cells.nth(i).text_content() for i in range(4)] == [
        str(round(v * 100)) for row in trans for v in row
    ]
    first = rows.nth(0).locator("td")
    # columns: split, text, given, suggested, score (the position is the row header)
    assert first.nth(1).inner_text() == flagged[0]["text"]
    assert first.nth(2).inner_text() == str(flagged[0]["given"])
    assert first.nth(3).inner_text() == str(flagged[0]["suggested"])
    assert f"{flagged[0]['score']:.3f}" in first.nth(4).inner_text()

    # filter by class: only rows whose given or suggested label is that class
    page.get_by_label("Class", exact=True).select_option("pos")
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td")
        assert "pos" in (cells.nth(2).inner_text(), cells.nth(3).inner_text())

    # export: the API's CSV, downloaded through the page with the session's key
    with page.expect_download() as dl:
        page.get_by_role("button", name="Export").click()
    body = Path(dl.value.path()).read_text()
    assert body.splitlines()[0].startswith("position,split,text")
    assert len(body.strip().splitlines()) == len(flagged) + 1

    # tenant B: the audit does not exist for it
    log.allow_status(404)
    other = page.context.browser.new_context()
    try:
        pb = other.new_page()
        log_b = watch_console(pb)
        log_b.allow_status(404)
        sign_in(pb, ui.base_url, ui.key_b)
        pb.goto(f"{ui.base_url}/ui/#/audits/{ds_id}/{audit_id}")
        pb.get_by_role("alert").wait_for()
        assert "NotFound" in pb.get_by_role("alert").inner_text()
        assert "noisy-labels" not in pb.content()
        assert not log_b.unexpected(), log_b.unexpected()
    finally:
        other.close()
    assert not log.unexpected(), log.unexpected()


#: WCAG 2 contrast of every visible text node against its nearest opaque background
#: (4.5:1, 3:1 for large text); SVG chart text and disabled controls are left out
CONTRAST_JS = """() => {
  const parse = (s) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(s || "");
    return m ? m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number) : null;
  };
  const lum = (c) => {
    const [r, g, b] = c.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const bgOf = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const p = parse(getComputedStyle(e).backgroundColor);
      if (p && (p.length < 4 || p[3] > 0.5)) return p.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const el = node.parentElement;
    if (!node.textContent.trim() || !el) continue;
    if (el.closest("svg, .visually-hidden, [disabled]")) continue;
    if (!el.getClientRects().length) continue; // not rendered
    const cs = getComputedStyle(el);
    if (cs.visibility === "hidden") continue;
    const fg = parse(cs.color).slice(0, 3);
    const bg = bgOf(el);
    const l1 = lum(fg), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(cs.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
    checked += 1;
    if (ratio < (large ? 3 : 4.5)) {
      bad.push(`${ratio.toFixed(2)} <${el.tagName.toLowerCase()} class="${el.className}">`
               + ` ${node.textContent.trim().slice(0, 40)}`);
    }
  }
  return { checked, bad };
}"""


def test_text_contrast_on_every_page(ui: UiServer, page_log: tuple[Any, ConsoleLog]) -> None:
    page, log = page_log
    a = ui.client(ui.key_a)
    ds_id = a.post(
        "/v1/datasets", json={"name": "contrast", "records": sentiment_records(8)}
    ).json()["id"]
    made = a.post("/v1/heads", json={"dataset_id": ds_id, "backbone": "minilm", "method": "lr"})
    head_id = made.json()["head"]["id"]
    assert wait_job(a, made.json()["job"]["id"])["status"] == "succeeded"

    page.goto(f"{ui.base_url}/ui/")
    page.get_by_label("API key").wait_for()
    pages = {"sign-in": page.evaluate(CONTRAST_JS)}
    sign_in(page, ui.base_url, ui.key_a)
    for name, hash_, ready in (
        ("datasets", "#/datasets", "Your datasets"),
        ("heads", f"#/heads?dataset={ds_id}", "Comparison"),
        ("head", f"#/heads/{head_id}", "Evaluation per split"),
        ("jobs", "#/jobs", "Jobs"),
        ("audits", f"#/audits?dataset={ds_id}", "Audit the labels of contrast"),
    ):
        page.goto(f"{ui.base_url}/ui/{hash_}")
        page.get_by_role("heading", name=ready).first.wait_for()
        pages[name] = page.evaluate(CONTRAST_JS)
    # the check itself finds faint text
    page.evaluate(
        """() => { const p = document.createElement('p'); p.textContent = 'faint words';
                   p.style.color = '#bbbbbb'; document.querySelector('main').append(p); }"""
    )
    faint = page.evaluate(CONTRAST_JS)["bad"]
    assert len(faint) == 1 and "faint words" in faint[0], faint
    for name, res in pages.items():
        assert res["checked"] > 5, (name, res)
        assert not res["bad"], (name, res["bad"])
    assert not log.unexpected(), log.unexpected()


def test_lists_follow_every_page(ui: UiServer, page_log: tuple[Any, ConsoleLog]) -> None:
    """The pages read whole lists page by page (cursor or offset pages of the API)."""
    page, log = page_log
    with ui.db.session() as s:  # a tenant of its own: a small, known list
        key = create_key(s, f"{ui.tenant_a}-paged").key
    a = ui.client(key)
    for i in range(5):
        r = a.post("/v1/datasets", json={"name": f"paged-{i}", "records": sentiment_records(2)})
        assert r.status_code == 201, r.text
    want = [d["id"] for d in a.get("/v1/datasets", params={"limit": 200}).json()["items"]]
    sign_in(page, ui.base_url, key)
    got = page.evaluate(
        """async () => {
            const { listAll } = await import('/ui/js/api.js');
            const all = await listAll('/v1/datasets', {}, 1000, 2);
            const capped = await listAll('/v1/datasets', {}, 3, 2);
            return { all: all.map(d => d.id), capped: capped.length };
        }"""
    )
    assert got["all"] == want and len(want) == 5
    assert got["capped"] == 3
    assert not log.unexpected(), log.unexpected()
