"""The insights page in Chromium: the chart and its data table show the same numbers, the page
works at a laptop's and a phone's width, and screenshots of both go to docs/ (for the README
and for a person reviewing how the page looks)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.models import Role, User
from tests.browser.conftest import WatchedBrowser
from tests.browser.test_layout_browser import sign_in
from tests.conftest import QA, LiveServer

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_chart_and_its_table_agree_and_screenshots_are_saved(
    browser: WatchedBrowser,
    live_server: LiveServer,
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
    backend: str,
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    asked = []
    for title in ("Roaming stopped after the update", "How do I move my number to an eSIM?",
                  "Billing shows a charge twice"):  # fmt: skip
        asked.append(qa.ask(asker, title=title))
    qa.answer(helper, asked[0])
    # Two of them asked earlier in the period, so the chart has more than one bar.
    for days_ago, thread in ((3, asked[1]), (9, asked[2])):
        thread.created_at = utcnow() - timedelta(days=days_ago)
    db.commit()
    agent = make_user("agnes", role=Role.AGENT)

    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server, agent)
    page.goto(f"{live_server.url}/b/{qa.forum.brand.slug}/insights")

    expect(page.get_by_role("heading", name="Volume")).to_be_visible()
    expect(page.locator("#volume-totals")).to_have_text("3 new threads, 1 answer.")
    chart = page.get_by_role("img", name="New threads per day")
    expect(chart).to_be_visible()
    bars = page.locator("#panel-volume svg rect.bar")
    expect(bars).to_have_count(28)
    heights = [
        float(height)
        for height in bars.evaluate_all("bars => bars.map(b => b.getAttribute('height'))")
    ]
    assert sum(1 for height in heights if height > 0) == 3
    page.get_by_text("The numbers per day").click()
    table = page.get_by_role("table", name="New threads and answers per day")
    cells = table.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert [int(cell) for cell in cells] == [1 if h > 0 else 0 for h in heights]
    expect(page.locator("a", has_text="Download as CSV").first).to_have_attribute(
        "href",
        f"/api/v1/analytics/{qa.forum.brand.slug}/service.csv?start="
        + page.locator("input[name=start]").input_value()
        + "&end="
        + page.locator("input[name=end]").input_value(),
    )

    if backend == "postgresql":  # one set of screenshots is enough
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "insights.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(DOCS / "insights-phone.png"), full_page=True)
        assert (DOCS / "insights.png").stat().st_size > 10_000
    context.close()
