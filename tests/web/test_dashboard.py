"""The web dashboard in Debian's Chromium against a real ``hpcbridge serve``: log in with a
token, submit through the page and watch the job finish in the list, read a job's page and
a failed job's reason, see the SLO charts, and be refused what the token may not see."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.web.conftest import Server

FINISH_MS = 90_000


def _log_in(page: Page, server: Server, who: str) -> None:
    page.goto(f"{server.url}/")
    page.fill("#token", server.tokens[who])
    page.click("#login button[type=submit]")
    expect(page.locator("#jobs")).to_be_visible()


def _shot(page: Page, artifacts: Path, name: str) -> None:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def _finished_job(server: Server, who: str, document: Mapping[str, object]) -> str:
    created = server.call(who, "POST", "/jobs", json=document)
    assert created.status_code == 201, created.text
    job_id: str = created.json()["job_id"]
    deadline = time.monotonic() + FINISH_MS / 1000
    while server.call(who, "GET", f"/jobs/{job_id}").json()["state"] not in (
        "succeeded",
        "failed",
        "cancelled",
    ):
        assert time.monotonic() < deadline, f"job {job_id} did not finish"
        time.sleep(0.2)
    return job_id


def test_a_bad_token_is_refused_and_the_page_is_offline(
    page: Page, server: Server, artifacts: Path
) -> None:
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None,
    )
    page.goto(f"{server.url}/")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#token", "hpcb_not-a-real-token")
    page.click("#login button[type=submit]")
    expect(page.locator("#login-message")).to_contain_text("not accepted")
    _shot(page, artifacts, "login-refused")
    assert page.evaluate("sessionStorage.length") == 0
    assert outside == []  # every script and style comes from the server itself


def test_submit_through_the_page_watch_it_finish_and_open_it(
    page: Page, server: Server, artifacts: Path
) -> None:
    _log_in(page, server, "member_a")
    spec = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "web-hello",
        "project": "a",
        "command": ["sh", "-c", "sleep 1; echo hello-from-the-browser"],
    }
    page.click("#submit-panel summary")
    page.fill("#submit-spec", json.dumps(spec))
    page.click("#submit button[type=submit]")
    expect(page.locator("#submit-message")).to_contain_text("Submitted")
    row = page.locator("#jobs tr", has=page.locator("td.name", has_text="web-hello"))
    expect(row).to_have_count(1)
    _shot(page, artifacts, "jobs-submitted")
    # Live state: the list polls, no reload.
    expect(row).to_have_attribute("data-state", "succeeded", timeout=FINISH_MS)
    _shot(page, artifacts, "jobs-finished")

    row.locator("a").click()
    expect(page.locator("#summary")).to_have_attribute("data-state", "succeeded")
    expect(page.locator("#log-stdout")).to_contain_text("hello-from-the-browser")
    expect(page.locator("#attempts svg.timeline rect[data-attempt='1']")).to_have_count(1)
    expect(page.locator("#events tbody tr").first).to_be_visible()
    expect(page.locator("#why")).to_contain_text("Cost")
    _shot(page, artifacts, "job-succeeded")


def test_a_failed_jobs_page_says_why(page: Page, server: Server, artifacts: Path) -> None:
    failing = {
        "apiVersion": "hpcbridge/v1",
        "kind": "Job",
        "name": "web-broken",
        "project": "a",
        "command": ["sh", "-c", "echo input.csv is missing >&2; exit 3"],
    }
    job_id = _finished_job(server, "member_a", failing)
    _log_in(page, server, "member_a")
    page.select_option("#filter-state", "failed")
    page.fill("#filter-name", "web-broken")
    page.click("#filters button[type=submit]")
    expect(page).to_have_url(f"{server.url}/ui/#/jobs?state=failed&name=web-broken")
    row = page.locator(f"#jobs tr[data-job-id='{job_id}']")
    expect(row).to_have_attribute("data-state", "failed")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    page.goto(f"{server.url}/ui/#/jobs?state=succeeded")  # a filter in the URL is kept
    expect(page.locator("#filter-state")).to_have_value("succeeded")
    expect(page.locator(f"#jobs tr[data-job-id='{job_id}']")).to_have_count(0)
    page.go_back()

    row.locator("a").click()
    why = page.locator("#why")
    expect(why.locator("h2")).to_have_text("Why it failed")
    expect(why).to_contain_text("The job's own program failed")
    expect(why).to_contain_text("3")
    expect(page.locator("#log-stderr")).to_contain_text("input.csv is missing")
    expect(page.locator("#attempts svg.timeline rect.attempt-failed")).to_have_count(1)
    _shot(page, artifacts, "job-failed-why")


def test_slo_page_draws_budget_and_burn_rate_charts(
    page: Page, server: Server, artifacts: Path
) -> None:
    _finished_job(server, "member_a", {
        "apiVersion": "hpcbridge/v1", "kind": "Job", "name": "web-slo", "project": "a",
        "command": ["true"],
    })  # fmt: skip
    slos = server.call("member_a", "GET", "/slo").json()["slos"]
    assert slos
    _log_in(page, server, "member_a")
    page.click("#nav a[href='#/slo']")
    cards = page.locator("#slos section.slo")
    expect(cards).to_have_count(len(slos))
    first = cards.first
    expect(first.locator("svg.chart.budget rect.bar")).to_have_count(1)
    windows = slos[0]["burn_rates"]
    expect(first.locator("svg.chart.burn text")).to_contain_text(list(windows)[:1])
    expect(first.locator("svg.chart.burn line.threshold")).to_have_count(1)
    _shot(page, artifacts, "slo-charts")


def test_another_projects_job_is_not_found(page: Page, server: Server, artifacts: Path) -> None:
    theirs = _finished_job(server, "member_b", {
        "apiVersion": "hpcbridge/v1", "kind": "Job", "name": "web-project-b", "project": "b",
        "command": ["true"],
    })  # fmt: skip
    _log_in(page, server, "viewer_a")
    expect(page.locator(f"#jobs tr[data-job-id='{theirs}']")).to_have_count(0)
    page.goto(f"{server.url}/ui/#/jobs/{theirs}")
    expect(page.locator("#not-found")).to_have_text("Not found")
    expect(page.locator("#job")).not_to_contain_text("web-project-b")
    _shot(page, artifacts, "other-project-not-found")


def test_audit_is_for_admins(page: Page, server: Server, artifacts: Path) -> None:
    _log_in(page, server, "viewer_a")
    page.click("#nav a[href='#/audit']")
    expect(page.locator("#audit-error")).to_contain_text("for admins")
    _shot(page, artifacts, "audit-refused")
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()

    _log_in(page, server, "site_admin")
    page.click("#nav a[href='#/audit']")
    expect(page.locator("#audit tbody tr").first).to_be_visible()
    expect(page.locator("#audit")).to_contain_text("submit")
    _shot(page, artifacts, "audit-admin")


def test_nodes_page_shows_what_the_api_answers(page: Page, server: Server, artifacts: Path) -> None:
    # Read-only: the server's scheduler (sinfo) or, where there is none, its error.
    answer = server.call("site_admin", "GET", "/nodes")
    _log_in(page, server, "site_admin")
    page.click("#nav a[href='#/nodes']")
    if answer.status_code == 200:
        names = [node["name"] for node in answer.json()]
        expect(page.locator("#nodes tbody tr")).to_have_count(len(names))
        for name in names:
            expect(page.locator(f"#nodes tr[data-node='{name}']")).to_have_count(1)
    else:
        expect(page.locator("#nodes-error")).to_contain_text(answer.json()["detail"][:40])
    _shot(page, artifacts, "nodes")
    page.click("#logout")

    _log_in(page, server, "viewer_a")  # a project's viewer is not the site's
    page.click("#nav a[href='#/nodes']")
    expect(page.locator("#nodes-error")).to_be_visible()
