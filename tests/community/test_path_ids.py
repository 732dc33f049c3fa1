"""Ids in the path that can name no row are a 404 on every route and method, pages and API,
anonymous or signed in: never a 500 (SQLite refused ids past 2**63 - 1 with an OverflowError)."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from community.core.models import Role
from community.core.security import is_row_number
from tests.conftest import api_routes, csrf_token

# Values that are not an id of any row: past BIGINT, far past it, not ASCII digits, signs.
UNADDRESSABLE = [
    "9223372036854775808",
    "18446744073709551616",
    "1" + "0" * 40,
    "²",
    "١٢",
    "-1",
    "0",
]
OTHER_PARAMS = {
    "brand_slug": "acme",
    "forum_slug": "mobile",
    "username": "nobody",
    "queue_name": "flagged",
    "action": "approve",
    "decision": "approve",
    "slug": "a-title",
    "role": "moderator",
}
PARAM = re.compile(r"\{([a-z_]+)(?::[a-z]+)?\}")


def id_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) for every route with an id in its path."""
    return [
        (method, route.path)
        for route in api_routes(app)
        if any(is_row_number(name) for name in PARAM.findall(route.path))
        for method in sorted(route.methods)
    ]


def fill(template: str, bad_id: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return bad_id if is_row_number(name) else OTHER_PARAMS.get(name, "x")

    return PARAM.sub(value, template)


def test_every_route_with_an_id_is_covered(app: FastAPI) -> None:
    routes = id_routes(app)
    paths = {path for _method, path in routes}
    assert len(routes) >= 40, routes
    for expected in ("/t/{thread_id}", "/kb/articles/{article_id}", "/api/v1/posts/{post_id}/vote"):
        assert any(path.endswith(expected) for path in paths), expected
    unknown = {name for path in paths for name in PARAM.findall(path)} - set(OTHER_PARAMS)
    assert all(is_row_number(name) for name in unknown), unknown


@pytest.mark.parametrize("role", [None, Role.ADMIN])
def test_ids_that_can_name_no_row_are_404_everywhere(
    app: FastAPI, as_role: object, role: Role | None
) -> None:
    client, _user = as_role(role)  # type: ignore[operator]
    assert isinstance(client, TestClient)
    token = csrf_token(client, "/")
    failures = []
    for method, template in id_routes(app):
        for bad_id in UNADDRESSABLE:
            path = fill(template, bad_id)
            response = client.request(
                method,
                path,
                headers={"x-csrf-token": token, "accept": "application/json"},
                follow_redirects=False,
            )
            if response.status_code != 404:
                failures.append(f"{method} {path}: {response.status_code}")
    assert not failures, "\n".join(failures[:30])


def test_the_largest_id_is_looked_up_and_not_found(client: TestClient) -> None:
    for path in ("/t/9223372036854775807", "/api/v1/threads/9223372036854775807"):
        response = client.get(path)
        assert response.status_code == 404, (path, response.status_code)


def test_numbers_too_large_elsewhere_are_a_clear_400_not_a_500(client: TestClient) -> None:
    huge = "9" * 30
    for path in (f"/api/v1/threads?forum_id={huge}", f"/search?page={huge}"):
        response = client.get(path)
        assert response.status_code < 500, (path, response.status_code)
