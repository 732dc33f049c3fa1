"""Every route of the app, walked by a brand's staff whose brand requires a second factor, from
sessions that have not passed one (and the moderator's API token, its owner without an
authenticator): wherever a plain member is refused (401/403/404), staff without the factor are
refused too (403 two_factor_required, or a 401/403/404), and nothing is written that the member
could not write. Staff work outside the role dependencies (the brand's sign-in settings, buttons
on thread pages) is caught here as well as the pages behind Admin/Moderator/Agent."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from community.core import api_tokens
from community.core.models import Role, User
from tests.community.test_cross_brand_routes import BODY, World, _fill, _json, _snapshot, world
from tests.conftest import api_routes, csrf_token, log_in

__all__ = ["world"]  # the cross-brand walk's world: brand B (globex) and its staff

UserFactory = Callable[..., User]
# Ways out of the session being walked, and the member's own account pages: not staff work.
SKIPPED = ("/logout", "/login", "/register", "/password", "/email/", "/account", "/uploads")
SKIPPED_SSO = "/sso/"
REFUSED = (401, 403, 404, 405, 410)
# One's own things that a member of another account is refused (here: the token being walked).
OWN = {"DELETE /api/v1/tokens/{token_id}"}


def _skipped(route: APIRoute) -> bool:
    return route.path.startswith(SKIPPED) or (
        SKIPPED_SSO in route.path and "/admin/" not in route.path
    )


def _send(
    client: TestClient, method: str, path: str, route: APIRoute, headers: dict[str, str], token: str
) -> Response:
    if path.startswith("/api/"):
        return client.request(
            method, path, json=_json(route), headers=headers, follow_redirects=False
        )
    return client.request(
        method, path, data={**BODY, "csrf_token": token}, headers=headers, follow_redirects=False
    )


def _ids(world: World) -> dict[str, list[str]]:
    # One id of each kind keeps the walk short: the guard is per route, not per object.
    return {name: values[:1] for name, values in world.ids.items()}


@pytest.mark.parametrize("who", ["gwen", "gil", "gus", "site_admin", "token"])
def test_no_staff_route_lets_a_session_without_the_second_factor_through(
    app: FastAPI,
    db: Session,
    world: World,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    who: str,
) -> None:
    world.b.require_staff_two_factor = True
    db.commit()
    if who == "site_admin":
        make_user("sia", role=Role.ADMIN)
    staff, member = make_client(), make_client()
    log_in(member, world.people["member"].username)
    bearer = who == "token"
    if bearer:
        # gil's token, made before the brand asked for a second factor (gil has none).
        gil = db.query(User).filter_by(username="gil").one()
        _made, raw = api_tokens.create_token(db, gil, "old")
        db.commit()
        staff_headers = {"Authorization": f"Bearer {raw}"}
        staff_token = ""
    else:
        log_in(staff, "sia" if who == "site_admin" else who)
        staff_token = csrf_token(staff, "/")
        staff_headers = {"X-CSRF-Token": staff_token, "HX-Request": "true"}
    member_token = csrf_token(member, "/")
    member_headers = {"X-CSRF-Token": member_token, "HX-Request": "true"}
    ids = _ids(world)
    found: list[str] = []
    checked = 0
    for route in api_routes(app):
        if _skipped(route):
            continue
        for method in sorted(route.methods or ()):
            if method in ("HEAD", "OPTIONS") or f"{method} {route.path}" in OWN:
                continue
            for path in _fill(route.path, ids):
                if bearer and not path.startswith("/api/"):
                    continue  # a token is no browser session: pages send it away
                checked += 1
                as_member = _send(member, method, path, route, member_headers, member_token)
                if as_member.status_code not in REFUSED:
                    continue  # a member may do it too: not staff work
                before = _snapshot(db) if method != "GET" else None
                response = _send(staff, method, path, route, staff_headers, staff_token)
                changed: list[str] = []
                if before is not None:
                    after = _snapshot(db)
                    changed = [name for name in after if after[name] != before[name]]
                leaked = response.status_code not in REFUSED or changed
                if leaked:
                    found.append(f"{method} {path} {response.status_code} {changed}")
    assert checked > (60 if bearer else 150), checked
    assert not found, "\n".join(found)

    # The walk's member was never signed out along the way (their refusals were real).
    assert member.get("/account").status_code == 200


def test_the_sign_in_settings_need_the_second_factor_they_protect(
    db: Session, world: World, make_client: Callable[[], TestClient]
) -> None:
    """A brand admin's session without the factor could read the sign-in settings and turn
    the brand's requirement of a second factor off (or point members at another provider):
    page and API now answer 403 two_factor_required and nothing changes."""
    world.b.require_staff_two_factor = True
    db.commit()
    admin = make_client()
    log_in(admin, "gwen")
    token = csrf_token(admin, "/")
    page = admin.get("/admin/brands/globex/sign-in")
    assert page.status_code == 403
    posted = admin.post(
        "/admin/brands/globex/sign-in",
        data={"password_sign_in": "on", "require_verified_email": "on", "csrf_token": token},
        follow_redirects=False,
    )
    assert posted.status_code == 403
    read = admin.get("/api/v1/brands/globex/sign-in", headers={"X-CSRF-Token": token})
    assert read.status_code == 403 and read.json()["error"]["code"] == "two_factor_required"
    put = admin.put(
        "/api/v1/brands/globex/sign-in",
        json={"require_staff_two_factor": False},
        headers={"X-CSRF-Token": token},
    )
    assert put.status_code == 403 and put.json()["error"]["code"] == "two_factor_required"
    db.expire_all()
    brand = db.get(type(world.b), world.b.id)
    assert brand is not None and brand.require_staff_two_factor is True
