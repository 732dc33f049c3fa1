"""A brand's look: colours checked against WCAG AA (the maths against known pairs), the CSS
custom properties each brand's stylesheet carries, footer links, logo and favicon uploads, the
admin page and API (brand admins of that brand and site admins only), and every page of a brand
showing its own look with header links that stay inside it."""

from __future__ import annotations

import io
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from PIL import Image
from sqlalchemy.orm import Session

from community.core import brand_look
from community.core.brand_look import (
    BrandLook,
    LookError,
    Mode,
    Palette,
    Theme,
    contrast_problems,
    contrast_ratio,
    format_ratio,
    parse_colour,
)
from community.core.models import Brand, Forum, Role, User
from community.core.workspace_models import BrandRole, StaffGrant
from tests.conftest import QA, csrf_token, fresh, log_in

UserFactory = Callable[..., User]
LOOK = "/admin/brands/{}/look"
MODES: tuple[Mode, ...] = ("light", "dark")
SVG_WITH_SCRIPT = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


# --- the maths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("#000000", "#ffffff", 21.0),
        ("#ffffff", "#ffffff", 1.0),
        ("#777777", "#ffffff", 4.48),  # the classic "just misses AA" grey
        ("#595959", "#ffffff", 7.0),
        ("#767676", "#ffffff", 4.54),  # the lightest grey that passes on white
        ("#0000ff", "#ffffff", 8.59),
        ("#ff0000", "#ffffff", 4.0),
    ],
)
def test_contrast_ratio_of_known_pairs(first: str, second: str, expected: float) -> None:
    assert contrast_ratio(first, second) == pytest.approx(expected, abs=0.01)
    assert contrast_ratio(second, first) == pytest.approx(expected, abs=0.01)


def test_ratios_read_rounded_but_never_up_to_the_threshold() -> None:
    assert format_ratio(contrast_ratio("#777777", "#ffffff")) == "4.48:1"
    assert format_ratio(7.0) == "7.0:1"
    assert format_ratio(2.9) == "2.9:1"
    assert format_ratio(4.4999) == "4.49:1"
    assert format_ratio(2.999) == "2.99:1"


@pytest.mark.parametrize(("typed", "stored"), [("#ABC", "#aabbcc"), (" #0B5CAD ", "#0b5cad")])
def test_colours_are_hex_only(typed: str, stored: str) -> None:
    assert parse_colour(typed) == stored


@pytest.mark.parametrize(
    "typed", ["red", "rgb(0,0,0)", "#12345", "#1234567", "#ggg", "#fff;}", "", "#fff url(x)"]
)
def test_anything_else_is_refused(typed: str) -> None:
    with pytest.raises(LookError):
        parse_colour(typed)


def test_grey_777_is_refused_and_grey_595959_accepted() -> None:
    refused = contrast_problems(Palette("#777777", "#777777"), "light")
    assert "needs 4.5:1" in refused["primary"]
    assert re.search(r"contrast 4\.\d+:1", refused["primary"].lower())
    assert contrast_problems(Palette("#595959", "#595959"), "light") == {}


def test_a_dark_theme_checks_against_the_dark_background() -> None:
    # The site's light blue is fine on white and unreadable on the dark page.
    assert contrast_problems(Palette("#0b5cad", "#0b5cad"), "light") == {}
    dark = contrast_problems(Palette("#0b5cad", "#0b5cad"), "dark")
    assert "#161b22" in dark["primary"] and "needs 4.5:1" in dark["primary"]
    assert "needs 3:1" in dark["accent"]


def test_button_text_is_white_or_near_black_whichever_reads_better() -> None:
    assert brand_look.text_on("#0b5cad") == brand_look.WHITE
    assert brand_look.text_on("#58a6ff") == brand_look.NEAR_BLACK
    # A colour that reads on a theme's page also carries its button text: the page check
    # implies the button check with these backgrounds, and both are made.
    for value in range(0, 256, 5):
        grey = f"#{value:02x}{value:02x}{value:02x}"
        for mode in MODES:
            problems = contrast_problems(Palette(grey, grey), mode)
            if "primary" not in problems:
                assert contrast_ratio(grey, brand_look.text_on(grey)) >= 4.5


@pytest.mark.parametrize("light", ["#0b5cad", "#b3261e", "#000000", "#1b7a3d", "#595959"])
def test_a_derived_dark_theme_passes_its_checks(light: str) -> None:
    theme = Theme(light=Palette(light, light))
    assert contrast_problems(theme.palette("dark"), "dark") == {}
    css = brand_look.stylesheet(theme)
    light_part, dark_part = css.split("@media (prefers-color-scheme: dark)")
    assert f"--brand-primary: {light};" in light_part
    assert f"--brand-primary: {theme.palette('dark').primary};" in dark_part
    # The derived hover shade reads on the tint behind the current link.
    values = dict(re.findall(r"--brand-([\w-]+): (#[0-9a-f]{6});", light_part))
    assert contrast_ratio(values["primary-strong"], values["primary-soft"]) >= 4.5
    assert contrast_ratio(values["primary"], values["on-primary"]) >= 4.5


def test_a_stored_theme_is_read_forgivingly() -> None:
    assert brand_look.theme_of({"accent": "#0b5cad"}).light == Palette("#0b5cad", "#0b5cad")
    hand_made = brand_look.theme_of({"primary": "red;}body{", "dark": "nope"})
    assert not hand_made.custom


# --- footer links and host names -------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/",
        "ftp://files.example/",
        "https://",
        "/path with space",
        "https://a.example/\nx",
    ],
)
def test_footer_links_must_be_web_addresses_or_paths(url: str) -> None:
    links, errors = brand_look.footer_links([{"label": "Help", "url": url}])
    assert links == [] and "footer_links.0" in errors


def test_footer_links_are_limited() -> None:
    rows = [{"label": f"L{index}", "url": f"/p{index}"} for index in range(9)]
    links, errors = brand_look.footer_links(rows)
    assert "footer_links" in errors
    _, label_error = brand_look.footer_links([{"label": "x" * 41, "url": "/a"}])
    assert "footer_links.0" in label_error
    blank_rows = [{"label": "", "url": ""}, {"label": "Status", "url": "https://status.example"}]
    links, errors = brand_look.footer_links(blank_rows)
    assert errors == {} and [link.url for link in links] == ["https://status.example"]


@pytest.mark.parametrize(
    "typed",
    ["https://support.b.example", "support.b.example:8443", "support.b.example/x", "localhost",
     "1.2.3.4", "-bad.example", "bad-.example", "a..example", "b_c.example", "x" * 64 + ".example"],
)  # fmt: skip
def test_bad_host_names(typed: str) -> None:
    with pytest.raises(LookError):
        brand_look.host_name(typed)


def test_host_names_are_stored_lowercase() -> None:
    assert brand_look.host_name(" Support.B.Example. ") == "support.b.example"
    assert brand_look.host_name("") is None


# --- the site: two brands --------------------------------------------------------------------


def second_brand(db: Session, host: str | None = None) -> Forum:
    """Brand "bravo" (Bravo Mobile, on `host` if given) and its forum "help" (Bravo help desk)."""
    brand = Brand(slug="bravo", name="Bravo Mobile", description="", theme={}, host=host)
    db.add(brand)
    db.flush()
    forum = Forum(brand_id=brand.id, slug="help", name="Bravo help desk", description="")
    db.add(forum)
    db.commit()
    return forum


def _brand_admin(db: Session, make_user: UserFactory, brand_id: int, name: str) -> User:
    user = make_user(name)
    db.add(StaffGrant(user_id=user.id, brand_id=brand_id, role=BrandRole.BRAND_ADMIN))
    db.commit()
    return user


def _save(client: TestClient, slug: str, **fields: object) -> Response:
    data: dict[str, object] = {
        "csrf_token": csrf_token(client, LOOK.format(slug)),
        "primary": "",
        "accent": "",
        "dark_primary": "",
        "dark_accent": "",
        "host": "",
    } | fields
    return client.post(LOOK.format(slug), data=data, follow_redirects=False)


def _png(colour: tuple[int, int, int] = (200, 30, 30), size: int = 40) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="PNG")
    return out.getvalue()


def _stylesheet_url(page: str) -> str | None:
    found = re.search(r'<link rel="stylesheet" href="(/b/[^"]+/theme\.css\?v=[0-9a-f]+)">', page)
    return found.group(1) if found else None


def test_each_brand_gets_its_own_colours(
    client: TestClient, db: Session, forum: Forum, make_user: UserFactory
) -> None:
    second_brand(db)
    admin = make_user("siteadmin", role=Role.ADMIN)
    log_in(client, admin.username)
    assert _save(client, "acme", primary="#595959", accent="#b3261e").status_code == 303
    assert _save(client, "bravo", primary="#1b7a3d", dark_primary="#56d364").status_code == 303

    acme_css_url = _stylesheet_url(client.get("/b/acme").text)
    bravo_css_url = _stylesheet_url(client.get("/b/bravo").text)
    assert acme_css_url and bravo_css_url and acme_css_url != bravo_css_url
    acme_css = client.get(acme_css_url)
    bravo_css = client.get(bravo_css_url).text
    assert acme_css.headers["content-type"].startswith("text/css")
    assert "--brand-primary: #595959;" in acme_css.text
    assert "--brand-accent: #b3261e;" in acme_css.text
    assert "#1b7a3d" not in acme_css.text
    assert "--brand-primary: #1b7a3d;" in bravo_css and "--brand-primary: #56d364;" in bravo_css
    assert "#595959" not in bravo_css


def test_the_stylesheet_is_kept_by_browsers_and_revalidated(
    client: TestClient, db: Session, forum: Forum, make_user: UserFactory
) -> None:
    log_in(client, make_user("siteadmin", role=Role.ADMIN).username)
    _save(client, "acme", primary="#595959")
    url = _stylesheet_url(client.get("/b/acme").text)
    assert url
    first = client.get(url)
    assert "immutable" in first.headers["cache-control"]
    assert "no-store" not in first.headers["cache-control"]  # even for a signed-in reader
    again = client.get(url, headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    stale = client.get(url.split("?")[0] + "?v=000000000000")
    assert stale.status_code == 200 and stale.headers["cache-control"] == "no-cache"
    assert client.get("/b/nobrand/theme.css").status_code == 404


def test_a_brand_without_colours_links_no_stylesheet(client: TestClient, forum: Forum) -> None:
    page = client.get("/b/acme").text
    assert _stylesheet_url(page) is None
    assert "/static/css/site.css" in page


def test_a_thread_of_brand_b_shows_b_and_links_inside_b(
    client: TestClient, db: Session, forum: Forum, make_user: UserFactory
) -> None:
    bravo_forum = second_brand(db)
    admin = make_user("siteadmin", role=Role.ADMIN)
    log_in(client, admin.username)
    _save(client, "bravo", primary="#1b7a3d", footer_label=["Status", "Terms"],
          footer_url=["https://status.bravo.example", "/b/bravo/conduct"])  # fmt: skip
    for kind, colour in (("logo", (20, 120, 60)), ("favicon", (10, 90, 40))):
        saved = client.post(
            f"{LOOK.format('bravo')}/{kind}",
            data={"csrf_token": csrf_token(client, LOOK.format("bravo"))},
            files={"file": (f"{kind}.png", _png(colour), "image/png")},
            follow_redirects=False,
        )
        assert saved.status_code == 303, saved.text[:300]
    db.expire_all()
    brand = db.get(Brand, bravo_forum.brand_id)
    assert brand is not None and brand.logo_key and brand.favicon_key
    brand.contact_email = "help@bravo.example"
    db.commit()

    thread = QA(db=db, forum=bravo_forum).ask(make_user("asker"), title="Bravo roaming")
    page = TestClient(client.app, base_url="http://testserver").get(f"/t/{thread.id}").text
    header = page.split('<main id="main"')[0]
    footer = page.split('<footer class="site-footer">')[1]
    assert "Bravo Mobile" in header and "Acme" not in header
    assert f'<img class="logo-image" src="/uploads/{brand.logo_key}"' in header
    assert f'<link rel="icon" href="/uploads/{brand.favicon_key}">' in header
    assert "/static/favicon.svg" not in header
    assert _stylesheet_url(page) is not None and "/b/bravo/theme.css" in page
    nav_links = re.findall(r'href="([^"]+)"', header.split('class="site-nav"')[1])
    assert "/b/bravo" in nav_links and "/b/bravo/kb" in nav_links
    assert "/b/bravo/search" in nav_links
    assert not [link for link in nav_links if "acme" in link or link in ("/", "/kb", "/search")]
    assert 'href="https://status.bravo.example"' in footer and ">Status<" in footer
    assert 'href="/b/bravo/conduct"' in footer
    assert 'href="mailto:help@bravo.example"' in footer

    # The first brand's pages keep their own look.
    acme = TestClient(client.app, base_url="http://testserver").get("/b/acme").text
    acme_header = acme.split('<main id="main"')[0]
    assert "Acme" in acme_header and "Bravo" not in acme_header
    assert "/static/favicon.svg" in acme_header and "logo-image" not in acme_header


def test_a_signed_in_member_is_sent_to_ask_in_the_brand_they_read(
    client: TestClient, db: Session, forum: Forum, make_user: UserFactory
) -> None:
    second_brand(db)
    log_in(client, make_user("plainmember").username)
    header = client.get("/b/bravo").text.split('<main id="main"')[0]
    assert 'href="/b/bravo/ask/new"' in header and "/b/acme/ask/new" not in header


def test_bad_colours_and_links_change_nothing(
    client: TestClient, db: Session, forum: Forum, make_user: UserFactory
) -> None:
    log_in(client, make_user("siteadmin", role=Role.ADMIN).username)
    assert _save(client, "acme", primary="#595959").status_code == 303
    refused = _save(
        client, "acme", primary="#777777", accent="nope", footer_label=["Evil"],
        footer_url=["javascript:alert(1)"], host="https://x.example",
    )  # fmt: skip
    assert refused.status_code == 422
    text = refused.text
    assert "needs 4.5:1" in text and "Enter a colour as #rrggbb" in text
    assert "Enter the host name only" in text
    assert "javascript:alert(1)" in text  # shown again in its field, to be corrected
    fresh(db)
    brand = db.get(Brand, forum.brand_id)
    assert brand is not None
    assert brand.theme == {"primary": "#595959", "accent": "#595959"}
    assert brand.footer_links == [] and brand.host is None


def test_the_api_sets_the_look_and_names_what_is_wrong(
    client: TestClient, db: Session, forum: Forum, make_user: UserFactory
) -> None:
    admin = _brand_admin(db, make_user, forum.brand_id, "acmeadmin")
    log_in(client, admin.username)
    token = csrf_token(client, "/")
    headers = {"X-CSRF-Token": token}
    body = {
        "primary": "#595959",
        "dark": {"primary": "#8cc2ff"},
        "footer_links": [{"label": "Status", "url": "https://status.acme.example"}],
        "host": "support.acme.example",
    }
    saved = client.put("/api/v1/brands/acme/look", json=body, headers=headers)
    assert saved.status_code == 200, saved.text
    out = saved.json()
    assert out["light"] == {"primary": "#595959", "accent": "#595959"}
    assert out["dark"]["primary"] == "#8cc2ff" and out["host"] == "support.acme.example"
    assert out["stylesheet_url"].startswith("/b/acme/theme.css?v=")

    for wrong, field in (
        ({"primary": "#777777"}, "primary"),
        ({"dark": {"primary": "#0b5cad"}}, "dark_primary"),
        ({"accent": "url(javascript:x)"}, "accent"),
        ({"footer_links": [{"label": "x", "url": "data:text/html,hi"}]}, "footer_links.0"),
        ({"host": "localhost"}, "host"),
    ):
        refused = client.put("/api/v1/brands/acme/look", json=wrong, headers=headers)
        assert refused.status_code == 422, (wrong, refused.text)
        assert field in refused.json()["error"]["details"], refused.json()
    unknown = client.put("/api/v1/brands/acme/look", json={"colour": "#fff"}, headers=headers)
    assert unknown.status_code == 422
    assert client.get("/api/v1/brands/acme/look").json() == out

    # Fields left out keep their value; null clears one.
    partial = client.put("/api/v1/brands/acme/look", json={"host": None}, headers=headers)
    assert partial.json()["host"] is None and partial.json()["light"] == out["light"]


def test_only_the_brands_admins_and_site_admins_change_its_look(
    db: Session, forum: Forum, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    bravo = second_brand(db)
    member, other_admin = make_client(), make_client()
    log_in(member, make_user("plainmember").username)
    log_in(other_admin, _brand_admin(db, make_user, bravo.brand_id, "bravoadmin").username)
    moderator = make_user("acmemod")
    db.add(StaffGrant(user_id=moderator.id, brand_id=forum.brand_id, role=BrandRole.MODERATOR))
    db.commit()
    staff = make_client()
    log_in(staff, moderator.username)
    for browser in (member, other_admin, staff):
        assert browser.get(LOOK.format("acme")).status_code == 403
        token = csrf_token(browser, "/")
        refused = browser.put(
            "/api/v1/brands/acme/look", json={"primary": "#595959"},
            headers={"X-CSRF-Token": token},
        )  # fmt: skip
        assert refused.status_code == 403
        posted = browser.post(
            LOOK.format("acme"), data={"csrf_token": token, "primary": "#595959"},
            follow_redirects=False,
        )  # fmt: skip
        assert posted.status_code == 403
    assert other_admin.get(LOOK.format("bravo")).status_code == 200
    anonymous = make_client()
    assert anonymous.get(LOOK.format("acme"), follow_redirects=False).status_code == 303
    assert anonymous.put("/api/v1/brands/acme/look", json={}).status_code in (401, 403)
    fresh(db)
    brand = db.get(Brand, forum.brand_id)
    assert brand is not None and brand.theme == {}


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("logo.svg", SVG_WITH_SCRIPT, 415),
        ("logo.html", b"<!doctype html><script>alert(1)</script>", 415),
        ("logo.png", b"<!doctype html><script>alert(1)</script>", 415),  # named as a PNG
        ("logo.png", b"", 400),
    ],
)  # fmt: skip
def test_a_logo_must_be_a_real_image(
    client: TestClient,
    db: Session,
    forum: Forum,
    make_user: UserFactory,
    name: str,
    content: bytes,
    status: int,
) -> None:
    log_in(client, make_user("siteadmin", role=Role.ADMIN).username)
    token = csrf_token(client, LOOK.format("acme"))
    page = client.post(
        f"{LOOK.format('acme')}/logo", data={"csrf_token": token},
        files={"file": (name, content, "image/png")}, follow_redirects=False,
    )  # fmt: skip
    assert page.status_code == status
    api = client.post(
        "/api/v1/brands/acme/logo", files={"file": (name, content, "image/svg+xml")},
        headers={"X-CSRF-Token": token},
    )  # fmt: skip
    assert api.status_code == status and api.json()["error"]["code"]
    fresh(db)
    brand = db.get(Brand, forum.brand_id)
    assert brand is not None and brand.logo_key is None


def test_logo_and_favicon_through_the_api(
    client: TestClient, db: Session, forum: Forum, make_user: UserFactory
) -> None:
    log_in(client, make_user("siteadmin", role=Role.ADMIN).username)
    headers = {"X-CSRF-Token": csrf_token(client, "/")}
    logo = client.post(
        "/api/v1/brands/acme/logo", files={"file": ("l.png", _png(), "image/png")}, headers=headers
    )
    assert logo.status_code == 200, logo.text
    logo_url = logo.json()["logo_url"]
    assert logo_url.startswith("/uploads/")
    served = client.get(logo_url)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    favicon = client.post(
        "/api/v1/brands/acme/favicon",
        files={"file": ("f.png", _png(size=300), "image/png")},
        headers=headers,
    )
    assert favicon.status_code == 200
    icon = Image.open(io.BytesIO(client.get(favicon.json()["favicon_url"]).content))
    assert max(icon.size) <= 64  # scaled down to a favicon's size
    replaced = client.post(
        "/api/v1/brands/acme/logo", files={"file": ("l.png", _png((1, 2, 3)), "image/png")},
        headers=headers,
    )  # fmt: skip
    assert replaced.json()["logo_url"] != logo_url
    assert client.get(logo_url).status_code == 404  # the replaced logo is gone
    removed = client.delete("/api/v1/brands/acme/logo", headers=headers)
    assert removed.json()["logo_url"] is None and removed.json()["favicon_url"]
    assert client.get(replaced.json()["logo_url"]).status_code == 404


def test_the_contrast_check_answers_while_typing(
    client: TestClient, forum: Forum, make_user: UserFactory
) -> None:
    log_in(client, make_user("siteadmin", role=Role.ADMIN).username)
    path = f"{LOOK.format('acme')}/contrast"
    fragment = client.get(
        path, params={"primary": "#777777", "dark_primary": "#8cc2ff"},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and 'id="contrast"' in fragment.text
    assert "needs 4.5:1" in fragment.text
    assert 'fill="#777777"' in fragment.text  # the preview shows the colour as typed
    page = client.get(path, params={"primary": "#595959"})
    assert "<html" in page.text and "needs 4.5:1" not in page.text
    # A blank dark theme previews the one derived from the light colours.
    derived = Theme(light=Palette("#b3261e", "#b3261e")).palette("dark").primary
    blank_dark = client.get(path, params={"primary": "#b3261e"}, headers={"HX-Request": "true"})
    assert f'fill="{derived}"' in blank_dark.text


def test_the_look_page_renders_for_an_admin(
    client: TestClient, forum: Forum, make_user: UserFactory
) -> None:
    log_in(client, make_user("siteadmin", role=Role.ADMIN).username)
    page = client.get(LOOK.format("acme"))
    assert page.status_code == 200
    assert 'name="primary"' in page.text and 'name="host"' in page.text
    assert 'enctype="multipart/form-data"' in page.text


def test_a_look_is_built_from_the_row_alone() -> None:
    brand = Brand(
        id=7, slug="x", name="X", host=None, theme={"primary": "#595959"}, logo_key="k1",
        favicon_key=None, footer_links=[{"label": "A", "url": "javascript:x"}], contact_email="",
    )  # fmt: skip
    look: BrandLook = brand_look.look_of(brand)
    assert look.logo_url == "/uploads/k1" and look.favicon_url is None
    assert look.footer_links == ()  # a link stored by hand that would not pass now is left out
    assert look.stylesheet_url == f"/b/x/theme.css?v={look.version}"
