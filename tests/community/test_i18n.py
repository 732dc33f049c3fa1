"""English and Spanish: chosen by preference, cookie or browser; every string translated."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from community.core.i18n import negotiate, parse_accept_language
from community.core.models import User
from tests.conftest import csrf_token, log_in

ROOT = Path(__file__).resolve().parents[2]
PO_FILE = ROOT / "community" / "translations" / "es" / "LC_MESSAGES" / "messages.po"


def test_accept_language_parsing_and_negotiation() -> None:
    assert parse_accept_language("fr-CH, fr;q=0.9, es;q=0.8, *;q=0.5") == ["fr-CH", "fr", "es"]
    assert parse_accept_language("en;q=0, es") == ["es"]
    assert parse_accept_language("es;q=abc, en") == ["en"]
    assert negotiate([None, None], "es-MX,es;q=0.9") == "es"
    assert negotiate([None, "en"], "es") == "en"
    assert negotiate(["es", "en"], "en") == "es"
    assert negotiate([None, "xx"], "de, fr") == "en"


def test_browser_language_picks_spanish(client: TestClient) -> None:
    page = client.get("/login", headers={"Accept-Language": "es-ES,es;q=0.9,en;q=0.5"})
    assert '<html lang="es">' in page.text
    assert "Iniciar sesión" in page.text
    english = client.get("/login", headers={"Accept-Language": "en-GB"})
    assert '<html lang="en">' in english.text
    assert "Log in" in english.text


def test_language_switcher_sets_a_cookie_that_beats_the_browser(client: TestClient) -> None:
    response = client.post(
        "/language",
        data={"locale": "es", "next": "/register", "csrf_token": csrf_token(client)},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/register"
    page = client.get("/register", headers={"Accept-Language": "en"})
    assert '<html lang="es">' in page.text
    assert "Crea tu cuenta" in page.text


def test_user_preference_beats_cookie_and_browser(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("lucia")
    log_in(client, "lucia")
    client.post(
        "/account/preferences",
        data={"display_name": "Lucía", "locale": "es", "csrf_token": csrf_token(client, "/")},
    )
    client.cookies.set("lang", "en")
    page = client.get("/account", headers={"Accept-Language": "en"})
    assert '<html lang="es">' in page.text
    assert "Tu cuenta" in page.text


def test_error_messages_are_translated(client: TestClient) -> None:
    page = client.get("/nope", headers={"Accept-Language": "es"})
    assert page.status_code == 404
    assert "No hemos encontrado esa página." in page.text
    api = client.get("/api/v1/me", headers={"Accept-Language": "es"})
    assert api.json()["error"]["message"] == "Inicia sesión para continuar."


def _extracted_messages() -> set[str]:
    with (ROOT / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found: set[str] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_has_a_spanish_translation() -> None:
    with PO_FILE.open("rb") as handle:
        catalog = read_po(handle)
    missing, fuzzy, broken = [], [], []
    for message_id in sorted(_extracted_messages()):
        entry = catalog.get(message_id)
        if entry is None or not entry.string:
            missing.append(message_id)
            continue
        if entry.fuzzy:
            fuzzy.append(message_id)
        placeholders = set(re.findall(r"%\((\w+)\)", message_id))
        if placeholders != set(re.findall(r"%\((\w+)\)", str(entry.string))):
            broken.append(message_id)
    assert not missing, f"untranslated (run the steps in README 'Translations'): {missing}"
    assert not fuzzy, f"fuzzy translations: {fuzzy}"
    assert not broken, f"placeholders differ: {broken}"
