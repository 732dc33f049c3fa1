"""Members' shared pages: one signed-in page kept for every member who would see the same.

The anonymous page cache (community.core.page_cache) serves logged-out visitors. A signed-in
member's page differs from another's in their name in the header, their unread count, their
CSRF token, and whatever their own votes, posts and permissions change on the page itself. For
a route registered here, a *classifier* (the domain's, registered by the app) names the
member's class for one request: a string, the same for every member who would get the same page
but for the header's personal parts, or None for a member whose page is never kept. A member
whose own posts or votes shape the page gets a class holding their user id: a page kept for them
alone (re-reading one's own question while waiting for answers is the commonest reload there
is). Members of one class then share one entry, kept and invalidated as anonymous pages are
(a generation bumped by every write, PAGE_CACHE_SECONDS at most), under a key that holds the
class and the unread count besides everything an anonymous page's key holds.

What makes sharing safe:
- The page is rendered with placeholders for the viewer's display name and username (the
  header's only personal text), derived from the secret key so no post can contain them, and
  each viewer's own are put back, escaped as the template escapes them, on every response,
  including the one that filled the entry. The CSRF token and the CSP nonce are swapped as on
  anonymous pages.
- The route itself declares the class it rendered the page for (`rendered_for_class`); an entry
  is kept only when that equals the class the classifier named before rendering, so a vote or a
  post that lands in between never puts one member's marks in another's page.
- The classifier reads the member's state fresh on every request (one statement): a vote, a
  post, a suspension or a role change moves them out of the class at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from markupsafe import escape
from sqlalchemy.orm import Session
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from community.core.auth import Viewer
from community.core.models import User
from community.core.web import walk_routes

# (database session, the member's row, the route's path parameters) -> the class, or None.
Classifier = Callable[[Session, User, Mapping[str, Any]], str | None]

DECLARED_STATE = "member_page_class"
CLASS_STATE = "member_class"


def rendered_for_class(scope_state: dict[str, Any], member_class: str) -> None:
    """Called by a route (with `request.scope["state"]`) that rendered a page any member of
    `member_class` would get: the page may be shared with them."""
    scope_state[DECLARED_STATE] = member_class


def declared_class(scope: Scope) -> str | None:
    value = (scope.get("state") or {}).get(DECLARED_STATE)
    return value if isinstance(value, str) else None


def viewer_class(scope: Scope) -> str | None:
    """The signed-in viewer's class for this request (set by the context middleware with the
    viewer), or None: not a member page, or a member who needs their own."""
    value = (scope.get("state") or {}).get(CLASS_STATE)
    return value if isinstance(value, str) else None


@dataclasses.dataclass(frozen=True, slots=True)
class MemberPage:
    """A request for a member page: its classifier and the route's path parameters."""

    classify: Classifier
    params: Mapping[str, Any]


class MemberPages:
    """The routes (by name) whose signed-in pages members of one class share. The context
    middleware (community.core.security) classifies the viewer in the statement round that
    loads them: one thread hop and one connection for both."""

    def __init__(self, classifiers: Mapping[str, Classifier]) -> None:
        self.classifiers = dict(classifiers)
        self._routes: list[tuple[BaseRoute, Classifier]] | None = None

    def _routes_of(self, scope: Scope) -> list[tuple[BaseRoute, Classifier]]:
        if self._routes is None:
            # Included routers' own routes: they are included without a prefix, as the page
            # links built from the same table (community.core.web.RouteUrls) assume.
            self._routes = [
                (route, self.classifiers[name])
                for route in walk_routes(scope["app"].router.routes)
                if (name := getattr(route, "name", None)) in self.classifiers
            ]
        return self._routes

    def match(self, scope: Scope) -> MemberPage | None:
        """The member page this GET asks for (a whole page, not an htmx fragment), if any,
        while the page cache is on."""
        cache = getattr(scope["app"].state, "page_cache", None)
        if scope["method"] != "GET" or cache is None or not cache.enabled:
            return None
        headers = dict(scope["headers"])
        if headers.get(b"hx-request") == b"true" and headers.get(b"hx-boosted") != b"true":
            return None
        for route, classify in self._routes_of(scope):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return MemberPage(classify, child.get("path_params", {}))
        return None


@dataclasses.dataclass(frozen=True, slots=True)
class PersonalSlots:
    """Placeholders for the header's personal text: the page is rendered for a viewer whose
    name and username are these, and each response puts its viewer's own back."""

    display_name: bytes
    username: bytes

    def stand_in(self, viewer: Viewer) -> Viewer:
        return dataclasses.replace(
            viewer, display_name=self.display_name.decode(), username=self.username.decode()
        )

    def personalise(self, body: bytes, viewer: Viewer) -> bytes:
        # As the templates write them: the name autoescaped, the username quoted into a path
        # (community.core.web.RouteUrls) and then autoescaped.
        name = str(escape(viewer.display_name or "")).encode()
        username = str(escape(quote(viewer.username or "", safe=""))).encode()
        return body.replace(self.display_name, name).replace(self.username, username)
