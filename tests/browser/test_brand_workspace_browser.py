"""A second brand set up in Chromium, as a site admin would: Globex is created beside Acme, gets
a forum, its own colours (after a colour the contrast check refuses), logo, favicon, footer link
and host name, and a moderator of its own. Its pages then show its look and keep their links
inside it, its host name serves its community, Acme keeps its own look, and Globex's moderator
is nobody in Acme. Screenshots of both brands, Globex's dark theme and the look page go to
docs/."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image, ImageDraw, ImageFont
from playwright.sync_api import Browser, BrowserContext, Locator, Page, ViewportSize, expect

from community.core.brand_look import Palette, derived_dark
from community.core.models import Role, User
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, BrowserProblems, WatchedBrowser
from tests.browser.test_agent_browser import sign_in
from tests.conftest import QA, LiveServer

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"
HOST = "support.globex.example"
PRIMARY, ACCENT = "#7a1fa2", "#c2410c"
TOO_PALE = "#f2b705"  # 1.69:1 on the light page background: refused
STATUS_PAGE = "https://status.globex.example/"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


def rgb(colour: str) -> str:
    """A "#rrggbb" colour as a computed style reads it, "rgb(122, 31, 162)"."""
    red, green, blue = (int(colour[index : index + 2], 16) for index in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def logo_png() -> bytes:
    """A small logo: a purple disc with a white G, on a transparent ground."""
    image = Image.new("RGBA", (96, 96), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((2, 2, 93, 93), fill=PRIMARY)
    font = ImageFont.load_default(size=60)
    draw.text((48, 50), "G", fill="white", font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def favicon_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), ACCENT).save(out, "PNG")
    return out.getvalue()


def new_page(context: BrowserContext) -> Page:
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    return opened


def check_colour(page: Page, field: Locator, colour: str) -> None:
    """Type a colour and wait for the live contrast check of it, as a person reads the verdict
    before going on. (A colour typed while the last check is under way cancels that one, by the
    field's hx-sync, and htmx reports the cancelled request as a console error.)"""
    with page.expect_response(
        lambda response: "/look/contrast?" in response.url and quote(colour) in response.url
    ) as checked:
        field.fill(colour)
    assert checked.value.ok


def header_links(page: Page) -> list[str]:
    hrefs: list[str] = page.locator(".site-header a").evaluate_all(
        "links => links.map(link => link.getAttribute('href'))"
    )
    return hrefs


def test_a_second_brand_with_its_own_look_host_and_staff(
    browser: WatchedBrowser,
    browser_problems: BrowserProblems,
    chromium: Browser,
    live_server: LiveServer,
    make_user: Callable[..., User],
    qa: QA,
    backend: str,
    tmp_path: Path,
) -> None:
    def screenshot(on: Page, name: str) -> None:
        if backend == "sqlite":  # once per run: the pictures in docs/
            DOCS.mkdir(exist_ok=True)
            on.screenshot(path=str(DOCS / name), full_page=True)
            assert (DOCS / name).stat().st_size > 10_000

    # The Host check on, as in production: the shared host is the live server's address; a
    # brand's own host is known because a brand has it. (The suite's "*" would take every
    # host, support.globex.example too, for the shared site.)
    app = live_server.app
    app.state.settings = app.state.settings.model_copy(update={"allowed_hosts": "127.0.0.1"})
    admin = make_user("site_admin_sam", role=Role.ADMIN)
    moderator = make_user("globex_mod_mia")
    asker = make_user("acme_asker")
    qa.ask(asker, title="My phone will not charge after the update")
    qa.ask(asker, title="How do I move my number to an eSIM?")
    base = live_server.url

    # 1. The site admin creates Globex beside Acme.
    admin_context = browser.new_context(locale="en-GB", viewport=DESKTOP)
    page = new_page(admin_context)
    sign_in(page, live_server, admin, "/admin/brands")
    expect(page.get_by_role("heading", name="Brands", level=1)).to_be_visible()
    expect(page.get_by_role("main").get_by_role("link", name="Acme", exact=True)).to_be_visible()
    page.get_by_role("link", name="New brand").click()
    page.get_by_label("Name").fill("Globex")
    page.get_by_label("Address").fill("globex")
    page.get_by_label("Default language").select_option(label="English")
    page.get_by_label("Description").fill("Help with Globex routers, fibre and TV boxes.")
    page.get_by_label("Contact e-mail (optional)").fill("help@globex.example")
    page.get_by_role("button", name="Create brand").click()
    expect(page.get_by_role("status")).to_contain_text("Brand Globex created.")
    expect(page).to_have_url(f"{base}/admin/brands/globex")

    # ... and a forum in it.
    new_forum = page.get_by_role("form", name="Add a forum")
    new_forum.get_by_label("Name").fill("Routers and fibre")
    new_forum.get_by_label("Address").fill("routers")
    new_forum.get_by_label("Description").fill("Lights, cables, speeds and Wi-Fi.")
    new_forum.get_by_role("button", name="Add forum").click()
    expect(page.get_by_role("status")).to_contain_text("Forum Routers and fibre created.")
    forums = page.get_by_role("region", name="Forums")
    expect(forums.get_by_role("link", name="Routers and fibre")).to_have_attribute(
        "href", "/b/globex/routers"
    )

    # Its look: a colour the contrast check refuses first, live and on saving.
    page.get_by_role("link", name="Look and address").click()
    expect(page.get_by_role("heading", name="Look and address", level=1)).to_be_visible()
    look = page.get_by_role("form", name="Colours, footer and host name")
    light_primary = look.get_by_label("Primary colour").first  # the light theme's, then the dark
    light_accent = look.get_by_label("Accent colour").first
    check_colour(page, light_primary, TOO_PALE)
    refusal = "Contrast 1.69:1 against the page background #f5f7fa, needs 4.5:1."
    expect(light_primary).to_have_accessible_description(re.compile(re.escape(refusal)))
    look.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Nothing was saved: please correct the fields marked below."
    )
    expect(light_primary).to_have_attribute("aria-invalid", "true")
    expect(light_primary).to_have_value(TOO_PALE)

    # Colours that pass, a footer link, the host name.
    check_colour(page, light_primary, PRIMARY)
    check_colour(page, light_accent, ACCENT)
    expect(light_primary).to_have_accessible_description(
        re.compile("Light primary: contrast is enough")
    )
    expect(light_accent).to_have_accessible_description(
        re.compile("Light accent: contrast is enough")
    )
    look.get_by_label("Label").first.fill("Network status")
    look.get_by_label("Address").first.fill(STATUS_PAGE)
    look.get_by_label("The brand's own host name").fill(HOST)
    look.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("The brand's look is saved.")
    expect(look.get_by_label("The brand's own host name")).to_have_value(HOST)

    # A logo and a favicon, uploaded.
    for kind, data, saved in (
        ("Logo", logo_png(), "The logo is saved."),
        ("Favicon", favicon_png(), "The favicon is saved."),
    ):
        picked = tmp_path / f"globex-{kind.lower()}.png"
        picked.write_bytes(data)
        section = page.get_by_role("region", name=kind)
        section.get_by_label("Image").set_input_files(str(picked))
        section.get_by_role("button", name="Upload").click()
        expect(page.get_by_role("status")).to_have_text(saved)
    current_logo = page.get_by_role("img", name="The current logo")
    expect(current_logo).to_have_attribute("src", re.compile(r"^/uploads/"))
    expect(current_logo).to_have_js_property("complete", True)
    assert current_logo.evaluate("image => image.naturalWidth") > 0
    # The admin page is Globex's too: its look in the header.
    expect(page.locator(".site-header .brand-mark")).to_have_text("Globex")
    screenshot(page, "brand-look-admin.png")

    # A moderator of Globex, given on its staff page.
    page.get_by_role("main").get_by_role("link", name="Globex", exact=True).click()
    page.get_by_role("link", name="Staff", exact=True).click()
    expect(page.get_by_role("heading", name="Staff", level=1)).to_be_visible()
    page.get_by_label("Member's username").fill(moderator.username)
    page.get_by_label("Role", exact=True).select_option(label="Moderator")
    page.get_by_role("button", name="Give role").click()
    expect(page.get_by_role("status")).to_have_text(
        f"{moderator.display_name} is now moderator of Globex."
    )
    staff = page.get_by_role("region", name="Who works on Globex")
    expect(staff.get_by_role("row", name=moderator.display_name)).to_contain_text("Moderator")

    # 2. Globex's pages show its look; every header link stays inside Globex.
    page.goto(f"{base}/b/globex")
    expect(page.get_by_role("heading", name="Globex community")).to_be_visible()
    for name, href in (
        ("Forums", "/b/globex"), ("Knowledge base", "/b/globex/kb"),
        ("Search", "/b/globex/search"), ("Ask", "/b/globex/ask/new"),
    ):  # fmt: skip
        expect(
            page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True)
        ).to_have_attribute("href", href)
    links = header_links(page)
    assert "/b/globex" in links and not [link for link in links if "acme" in link], links
    assert [link for link in links if link.startswith("/b/")] == [
        link for link in links if link.startswith("/b/globex")
    ]
    admin_context.close()

    visitor = browser.new_context(locale="en-GB", viewport=DESKTOP)
    page = new_page(visitor)
    page.goto(f"{base}/b/globex")
    expect(page.get_by_role("heading", name="Globex community")).to_be_visible()
    mark = page.locator(".site-header .brand-mark")
    expect(mark).to_have_text("Globex")
    expect(mark).to_have_attribute("href", "/b/globex")
    logo = mark.locator("img")
    expect(logo).to_have_attribute("src", re.compile(r"^/uploads/"))
    expect(logo).to_have_js_property("complete", True)
    assert logo.evaluate("image => image.naturalWidth") > 0
    expect(page.locator("link[rel=icon]")).to_have_attribute("href", re.compile(r"^/uploads/"))
    footer = page.get_by_role("contentinfo")
    expect(footer.get_by_role("link", name="Network status")).to_have_attribute("href", STATUS_PAGE)
    expect(footer.get_by_role("link", name="Contact: help@globex.example")).to_be_visible()
    # Its colours applied: links and buttons in the primary colour, the header's stripe in the
    # accent.
    forum_link = page.get_by_role("link", name="Routers and fibre")
    expect(forum_link).to_have_css("color", rgb(PRIMARY))
    expect(page.get_by_role("link", name="Sign up")).to_have_css("background-color", rgb(PRIMARY))
    expect(page.locator(".site-header")).to_have_css("border-top-color", rgb(ACCENT))
    links = header_links(page)
    assert not [link for link in links if "acme" in link], links
    screenshot(page, "brand-globex.png")

    # Acme keeps its own look: the site's blue, no logo, none of Globex's footer.
    page.goto(f"{base}/b/acme")
    expect(page.get_by_role("heading", name="Acme community")).to_be_visible()
    mark = page.locator(".site-header .brand-mark")
    expect(mark).to_contain_text("Acme")
    expect(mark.locator(".logo")).to_have_text("A")  # its initial instead of a logo
    expect(mark.locator("img")).to_have_count(0)
    expect(page.get_by_role("link", name="Mobile", exact=True)).to_have_css("color", rgb("#0b5cad"))
    expect(page.get_by_role("link", name="Sign up")).to_have_css("background-color", rgb("#0b5cad"))
    expect(
        page.get_by_role("contentinfo").get_by_role("link", name="Network status")
    ).to_have_count(0)
    expect(page.locator("link[rel=icon]")).to_have_attribute("href", "/static/favicon.svg")
    assert not [link for link in header_links(page) if "globex" in link]
    screenshot(page, "brand-acme.png")
    visitor.close()

    # Globex's dark theme: derived from its light colours, applied under a dark preference.
    dark = derived_dark(Palette(primary=PRIMARY, accent=ACCENT))
    night = browser.new_context(locale="en-GB", viewport=DESKTOP, color_scheme="dark")
    page = new_page(night)
    page.goto(f"{base}/b/globex")
    expect(page.get_by_role("link", name="Routers and fibre")).to_have_css(
        "color", rgb(dark.primary)
    )
    expect(page.locator("body")).to_have_css("background-color", rgb("#0d1117"))
    screenshot(page, "brand-globex-dark.png")
    night.close()

    # 3. Globex's own host name serves Globex's community at "/", with links relative to it.
    port = base.rsplit(":", 1)[1]
    elsewhere = chromium.browser_type.launch(
        executable_path=CHROMIUM,
        args=[
            *CHROMIUM_ARGS,
            f"--host-resolver-rules=MAP {HOST} 127.0.0.1",
            # Plain http on a name that is not localhost is no secure context: Chromium would
            # ignore the Cross-Origin-Opener-Policy header and say so as a console error. A
            # brand's host is https in production.
            f"--unsafely-treat-insecure-origin-as-secure=http://{HOST}:{port}",
        ],
        headless=True,
    )
    try:
        on_host = browser_problems.watch(elsewhere.new_context(locale="en-GB", viewport=DESKTOP))
        page = new_page(on_host)
        response = page.goto(f"http://{HOST}:{port}/")
        assert response is not None and response.status == 200
        expect(page.get_by_role("heading", name="Globex community")).to_be_visible()
        mark = page.locator(".site-header .brand-mark")
        expect(mark).to_have_text("Globex")
        expect(mark).to_have_attribute("href", "/")
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Knowledge base")).to_have_attribute("href", "/kb")
        expect(page.get_by_role("link", name="Routers and fibre")).to_have_css(
            "color", rgb(PRIMARY)
        )
        assert not [link for link in header_links(page) if "acme" in link]
        nav.get_by_role("link", name="Knowledge base").click()
        expect(page).to_have_url(f"http://{HOST}:{port}/kb")
        expect(page.locator(".site-header .brand-mark")).to_have_text("Globex")
        on_host.close()
    finally:
        elsewhere.close()

    # 4. Globex's moderator moderates Globex, and nothing in Acme.
    staff_context = browser.new_context(locale="en-GB", viewport=DESKTOP)
    page = new_page(staff_context)
    sign_in(page, live_server, moderator, "/b/globex")
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Moderation")
    ).to_have_attribute("href", "/b/globex/mod")
    response = page.goto(f"{base}/b/globex/mod")
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", name="Moderation", level=1)).to_be_visible()
    response = page.goto(f"{base}/b/acme/mod")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed", level=1)).to_be_visible()
    page.goto(f"{base}/b/acme")
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Moderation")
    ).to_have_count(0)
    staff_context.close()
