"""Pictures in the editor, in Chromium: "Add image" picks a file, a pasted image is uploaded too,
each lands as Markdown at the cursor, the live preview and the posted question show them under
the site's CSP, and without JavaScript the control is not offered (it could do nothing)."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.models import Brand, Forum, User
from community.core.workspace_models import Upload
from tests.browser.conftest import PageProblems, WatchedBrowser
from tests.conftest import PASSWORD, LiveServer, fresh

pytestmark = pytest.mark.browser

UPLOAD_MARKDOWN = re.compile(r"!\[([^\]]*)\]\(/uploads/([A-Za-z0-9_-]{32})\)")


@pytest.fixture
def acme_forum(db: Session) -> Forum:
    brand = Brand(slug="acme", name="Acme", description="", theme={}, default_locale="en")
    db.add(brand)
    db.flush()
    forum = Forum(brand_id=brand.id, slug="mobile", name="Mobile", description="Phones", position=0)
    db.add(forum)
    db.commit()
    return forum


def png(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60, 40), colour).save(out, "PNG")
    return out.getvalue()


def sign_in(page: Page, live_server: LiveServer, user: User, next_path: str) -> None:
    page.goto(f"{live_server.url}/login?next={quote(next_path)}")
    page.get_by_label("Username or e-mail").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(re.escape(live_server.url + next_path) + "$"))


def test_pick_and_paste_pictures_into_a_question(
    page: Page, problems: PageProblems, browser: WatchedBrowser, live_server: LiveServer,
    make_user: Callable[..., User], acme_forum: Forum, db: Session, tmp_path: Path,
) -> None:  # fmt: skip
    asker = make_user("picture_pia")
    sign_in(page, live_server, asker, "/b/acme/ask/new")
    page.get_by_label("Forum", exact=True).select_option(label="Mobile")
    with page.expect_response(lambda response: "/kb/suggest" in response.url) as suggested:
        page.get_by_label("Title").fill("Which light means the fibre is down?")
    assert suggested.value.ok
    body = page.get_by_label("Details (Markdown)")
    body.fill("My router shows this:\n")

    picked = tmp_path / "router lights.png"
    picked.write_bytes(png("green"))
    page.get_by_label("Add image").set_input_files(str(picked))
    expect(body).to_have_value(re.compile(r"!\[router lights\]\(/uploads/"))
    expect(page.get_by_text("Image added.")).to_be_visible()

    # A picture pasted into the text is uploaded the same way.
    pasted = base64.b64encode(png("purple")).decode()
    page.evaluate(
        """([field, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "clipboard.png", { type: "image/png" }));
            document.getElementById(field).dispatchEvent(new ClipboardEvent("paste", {
                clipboardData: transfer, bubbles: true, cancelable: true }));
        }""",
        ["field-body", pasted],
    )
    expect(body).to_have_value(re.compile(r"!\[clipboard\]\(/uploads/"))
    keys = [key for _alt, key in UPLOAD_MARKDOWN.findall(body.input_value())]
    assert len(keys) == 2

    # The live preview shows both pictures, loaded from this site under its CSP.
    preview = page.locator("#ask-preview img")
    expect(preview).to_have_count(2)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#ask-preview img')]"
        ".every((img) => img.complete && img.naturalWidth === 60)"
    )

    page.get_by_role("button", name="Post your question").click()
    expect(page).to_have_url(re.compile(r"/t/\d+$"))
    question = page.get_by_role("region", name="Question")
    expect(question.locator("img")).to_have_count(2)

    fresh(db)
    stored = db.scalars(select(Upload).where(Upload.key.in_(keys))).all()
    assert len(stored) == 2 and all(upload.post_id is not None for upload in stored)
    assert problems.messages == []

    # Without JavaScript the control is not offered: nothing would upload the file.
    context = browser.new_context(locale="en-GB", java_script_enabled=False)
    try:
        plain = context.new_page()
        sign_in(plain, live_server, asker, "/b/acme/ask/new")
        expect(plain.get_by_label("Add image")).to_be_hidden()
    finally:
        context.close()
