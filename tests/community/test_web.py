"""Security headers, error pages and bad input: clear 4xx answers, never a 500, nothing changed."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core.models import Forum, Role, User
from tests.conftest import csrf_token, fresh, log_in

PAGES = ["/", "/login", "/register", "/healthz", "/api/v1/brands", "/no-such-page", "/api/v1/nope"]


def _assert_security_headers(headers: dict[str, str] | object) -> None:
    get = headers.get  # type: ignore[attr-defined]
    csp = get("content-security-policy")
    assert csp is not None
    assert "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp
    assert "base-uri 'none'" in csp
    script_src = re.search(r"script-src ([^;]+)", csp)
    assert script_src
    assert "'unsafe-inline'" not in script_src.group(1)
    assert "'nonce-" in script_src.group(1)
    assert get("x-content-type-options") == "nosniff"
    assert get("referrer-policy") == "strict-origin-when-cross-origin"
    assert get("x-frame-options") == "DENY"
    assert get("cross-origin-opener-policy") == "same-origin"


@pytest.mark.parametrize("path", PAGES)
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    response = client.get(path)
    _assert_security_headers(response.headers)


def test_csp_nonce_is_fresh_and_matches_the_scripts(client: TestClient) -> None:
    nonces = []
    for _ in range(2):
        response = client.get("/login")
        nonce = re.search(r"'nonce-([^']+)'", response.headers["content-security-policy"])
        assert nonce
        nonces.append(nonce.group(1))
        scripts = re.findall(r"<script [^>]*>", response.text)
        assert scripts
        assert all(f'nonce="{nonce.group(1)}"' in tag for tag in scripts)
        assert "<script>" not in response.text  # no inline script at all
    assert nonces[0] != nonces[1]


def test_unexpected_error_is_a_plain_500_with_headers_and_no_traceback(
    app: FastAPI, client: TestClient
) -> None:
    def explode() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/boom", explode)
    app.add_api_route("/api/v1/boom", explode)
    with TestClient(app, raise_server_exceptions=False) as raw:
        page = raw.get("/boom")
        api = raw.get("/api/v1/boom")
    assert page.status_code == 500
    assert api.status_code == 500
    for response in (page, api):
        assert "Traceback" not in response.text
        assert "secret internal detail" not in response.text
        _assert_security_headers(response.headers)
    assert api.json()["error"]["code"] == "server_error"


def test_authenticated_pages_are_not_cached(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    assert client.get("/").headers.get("cache-control") != "no-store"
    make_user("priya")
    log_in(client, "priya")
    assert client.get("/").headers["cache-control"] == "no-store"


def test_404_page_and_json(client: TestClient) -> None:
    page = client.get("/no/such/page")
    assert page.status_code == 404
    assert "Page not found" in page.text
    assert "<html" in page.text
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.json()["error"]["code"] == "not_found"
    assert client.get("/t/987654").status_code == 404
    assert client.get("/b/no-brand").status_code == 404


def test_422_page_and_json(client: TestClient, forum: Forum) -> None:
    page = client.get("/b/acme/search?q=router&page=not-a-number")
    assert page.status_code == 422
    assert "Please check what you sent" in page.text
    api = client.get(f"/api/v1/forums/{forum.id}/threads?limit=not-a-number")
    assert api.status_code == 422
    body = api.json()["error"]
    assert body["code"] == "invalid_input"
    assert body["details"][0]["field"].endswith("limit")
    # An id in the path that cannot name a row is no page at all.
    assert client.get("/t/not-a-number").status_code == 404
    assert client.get("/api/v1/users/not-a-number").status_code == 404


def test_405_is_clear(client: TestClient) -> None:
    response = client.delete("/api/v1/brands", headers={"X-CSRF-Token": csrf_token(client)})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def _admin_with_token(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]],
) -> tuple[TestClient, str]:
    admin_client, _admin = as_role(Role.ADMIN)
    return admin_client, csrf_token(admin_client, "/")


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2", "application/json"),
        (b"\xff\xfe\x00garbage", "application/json"),
        (b'{"role": ["admin"]}', "application/json"),
        (b'"admin"', "application/json"),
        (b"role=admin", "text/plain"),
    ],
)
def test_malformed_api_bodies_get_422(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]],
    make_user: Callable[..., User],
    db: Session,
    content: bytes,
    content_type: str,
) -> None:
    admin_client, token = _admin_with_token(as_role)
    target = make_user("lee")
    response = admin_client.put(
        f"/api/v1/users/{target.id}/role",
        content=content,
        headers={"content-type": content_type, "X-CSRF-Token": token},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_input"
    fresh(db)
    assert db.get(User, target.id).role == Role.MEMBER  # type: ignore[union-attr]


def test_malformed_multipart_is_a_400(client: TestClient) -> None:
    client.get("/")
    response = client.post(
        "/register",
        content=b"--xyz\r\nContent-Disposition: form-data; name=\r\n\r\nbroken",
        headers={"content-type": "multipart/form-data; boundary=xyz"},
    )
    assert response.status_code in (400, 403)
    assert response.status_code != 500


def test_oversized_body_is_a_413_and_changes_nothing(
    client: TestClient, db: Session, settings: object
) -> None:
    token = csrf_token(client, "/register")
    huge = "x" * (10 * 1024 * 1024)
    response = client.post(
        "/register",
        data={"username": "big", "email": "b@example.com", "password": huge, "csrf_token": token},
    )
    assert response.status_code == 413
    fresh(db)
    assert db.scalar(select(func.count()).select_from(User)) == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.dictionaries(
        st.sampled_from(["username", "email", "password", "display_name", "login", "next", "x"]),
        st.text(max_size=300),
        max_size=6,
    )
)
def test_forms_never_answer_500(client: TestClient, fields: dict[str, str]) -> None:
    token = csrf_token(client, "/register")
    for path in ("/register", "/login"):
        response = client.post(path, data=fields | {"csrf_token": token}, follow_redirects=False)
        assert response.status_code < 500, (path, fields)
        if response.status_code == 303:
            client.cookies.clear()
            token = csrf_token(client, "/register")


def test_xss_in_names_comes_out_escaped(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    user = make_user("safe_name")
    user.display_name = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    db.commit()
    page = client.get("/u/safe_name")
    assert "<script>alert(2)" not in page.text
    assert "<img src=x" not in page.text
    assert "&lt;script&gt;alert(2)" in page.text


def test_api_docs_and_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "/api/v1/me" in schema["paths"]
    assert all(not path.startswith("/admin") for path in schema["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200
    # Vendored and under the site's own policy: nothing from a CDN, no inline script.
    assert "/static/vendor/swagger-ui-5.36.0/swagger-ui-bundle.js" in docs.text
    assert "//" not in docs.text.replace("<!doctype html>", ""), "no other host"
    assert "<script>" not in docs.text
    policy = docs.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "cdn" not in policy
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert client.get(f"/static/vendor/swagger-ui-5.36.0/{asset}").status_code == 200


@pytest.mark.parametrize("path", ["/b/%00", "/b/acme/%00x", "/u/%00", "/api/v1/brands/%00/forums"])
def test_nul_characters_in_paths_are_client_errors(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert 400 <= response.status_code < 500


_TITLE = re.compile(r"<title>(.*?)</title>", re.DOTALL)


@pytest.mark.parametrize(
    ("role", "path"),
    [
        (None, "/"),
        (None, "/login"),
        (None, "/register"),
        (Role.MEMBER, "/account"),
        (Role.MEMBER, "/notifications"),
        (Role.MEMBER, "/account/flags"),
        (Role.MODERATOR, "/mod/audit"),
        (Role.ADMIN, "/admin/users"),
    ],
)
def test_page_titles_are_plain_text(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]],
    role: Role | None,
    path: str,
) -> None:
    browser, _user = as_role(role)
    response = browser.get(path)
    assert response.status_code == 200, path
    found = _TITLE.search(response.text)
    assert found is not None
    title = found.group(1)
    assert "<" not in title and len(title) < 120, title[:200]
