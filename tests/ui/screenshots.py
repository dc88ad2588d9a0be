"""Screenshots of the dashboard's main pages for docs/ui/ (README shows them).

    python -m tests.ui.screenshots [--out docs/ui]

Starts the API with the dashboard on a temporary SQLite file and the local MiniLM backbone,
creates a small sentiment dataset with two out-of-domain splits through the REST API,
trains lr, nmtune and auto heads (short configs), audits the labels of a copy with three
flipped labels, starts a longer head to catch its live curves, and photographs each page
in Debian's chromium at a laptop size (1366 x 900)."""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.service.conftest import NEGATIVE, POSITIVE, sentiment_records, wait_job
from tests.ui.harness import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FAST,
    chromium_missing,
    sign_in,
    ui_server,
    watch_console,
)

log = logging.getLogger("screenshots")


def records() -> list[dict[str, Any]]:
    recs = sentiment_records()
    for i in range(8):  # a second register: short chat messages
        recs.append(
            {"text": f"{POSITIVE[i].split(',')[0]}, thx", "label": "pos", "split": "ood:chat"}
        )
        recs.append(
            {"text": f"{NEGATIVE[i].split(',')[0]}, meh", "label": "neg", "split": "ood:chat"}
        )
    return recs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="docs/ui", help="folder for the PNG files")
    args = ap.parse_args()
    why = chromium_missing()
    if why:
        raise SystemExit(why)
    from playwright.sync_api import sync_playwright

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp, ui_server(Path(tmp) / "shots.db") as srv:
        c = srv.client(srv.key_a)
        ds = c.post("/v1/datasets", json={"name": "reviews", "records": records()}).json()
        heads: dict[str, str] = {}
        for method, name in (("lr", "lr-cv"), ("nmtune", "nmtune-robust"), ("auto", "auto")):
            r = c.post(
                "/v1/heads",
                json={
                    "dataset_id": ds["id"],
                    "backbone": "minilm",
                    "method": method,
                    "name": name,
                    "overrides": {} if method == "lr" else FAST,
                },
            ).json()
            assert wait_job(c, r["job"]["id"])["status"] == "succeeded"
            heads[method] = r["head"]["id"]
            log.info("trained %s", name)
        noisy = records()
        for i in (3, 10, 17):  # a few flipped training labels for the audit to find
            noisy[i]["label"] = "neg" if noisy[i]["label"] == "pos" else "pos"
        nds = c.post("/v1/datasets", json={"name": "reviews-noisy", "records": noisy}).json()
        audit = c.post(f"/v1/datasets/{nds['id']}/audit", json={"backbone": "minilm"}).json()
        assert wait_job(c, audit["job"]["id"])["status"] == "succeeded"
        log.info("audited %s", nds["id"])
        live = c.post(
            "/v1/heads",
            json={
                "dataset_id": ds["id"],
                "backbone": "minilm",
                "method": "nmtune",
                "preset": "paper-code",
                "name": "paper-code-long",
                "overrides": {"epochs": 400, "min_steps": 4000},
            },
        ).json()

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            console = watch_console(page)

            def shot(name: str, full: bool = True) -> None:
                page.wait_for_timeout(300)
                page.screenshot(path=str(out / f"{name}.png"), full_page=full)
                log.info("wrote %s", out / f"{name}.png")

            page.goto(f"{srv.base_url}/ui/")
            page.get_by_label("API key").wait_for()
            shot("signin", full=False)
            sign_in(page, srv.base_url, srv.key_a)
            page.locator("details.labels summary").first.click()
            shot("datasets")
            page.goto(f"{srv.base_url}/ui/#/heads?dataset={ds['id']}")
            page.locator("#compare").wait_for()
            shot("heads")
            page.goto(f"{srv.base_url}/ui/#/heads/{heads['auto']}")
            page.get_by_role("heading", name="Evaluation per split").wait_for()
            page.get_by_label("Inputs, one per line").fill(
                "what a lovely, warm film\nnever again, a waste of money"
            )
            page.get_by_role("button", name="Predict").click()
            page.locator("#predictions tbody tr").nth(1).wait_for()
            page.locator("select[name=eval-split]").select_option("ood:tweets")
            shot("head")
            # live training: wait for some epochs of the long job, on its head page
            deadline = time.time() + 120
            while time.time() < deadline:
                job = c.get(f"/v1/jobs/{live['job']['id']}").json()
                if len(job["epochs"]) >= 12:
                    break
                time.sleep(0.5)
            page.goto(f"{srv.base_url}/ui/#/heads/{live['head']['id']}")
            page.locator("#job-state[data-status=running]").wait_for()
            page.wait_for_timeout(2500)  # a few more SSE updates
            shot("training", full=False)
            page.goto(f"{srv.base_url}/ui/#/jobs")
            page.get_by_role("button", name=f"Cancel job {live['job']['id']}").wait_for()
            shot("jobs", full=False)
            page.get_by_role("button", name=f"Cancel job {live['job']['id']}").click()
            page.goto(f"{srv.base_url}/ui/#/audits/{nds['id']}/{audit['audit']['id']}")
            page.get_by_role("heading", name="Flagged examples").wait_for()
            shot("audit")
            browser.close()
        wait_job(c, live["job"]["id"])
        if console.unexpected():
            raise SystemExit(f"console errors: {console.unexpected()}")


if __name__ == "__main__":
    main()
