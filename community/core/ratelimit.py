"""Rate limits on what people do, with the `limits` library: memory by default, Redis when
REDIS_URL is set (shared by every web process). New accounts (trust level 0) get tighter limits.
Exceeding one is a 429 with Retry-After, as a page or as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from limits import RateLimitItem, parse, strategies
from limits.errors import StorageError

from community.core.auth import Viewer, client_ip, get_viewer
from community.core.clock import utcnow
from community.core.errors import TooManyRequests
from community.core.i18n import gettext as _
from community.core.settings import Settings
from community.core.throttle import LimitStore


@dataclass(frozen=True, slots=True)
class Rule:
    default: str
    new_account: str | None = None  # for trust level 0


RULES: dict[str, Rule] = {
    "register": Rule("10/hour"),
    "register_address": Rule("3/hour"),
    "post": Rule("20/10 minutes", new_account="5/10 minutes"),
    # Pictures pasted into posts and articles (community/upload_routes.py): a few per post.
    "upload": Rule("40/10 minutes", new_account="10/10 minutes"),
    "vote": Rule("60/minute", new_account="20/minute"),
    "flag": Rule("30/hour", new_account="10/hour"),
    "search": Rule("120/minute"),
    # "Forgot password?": per address as well as per visitor (community/accounts/routes.py).
    "password_reset": Rule("10/hour"),
    "password_reset_address": Rule("5/hour"),
    # E-mailed links a signed-in member asks for: a new confirmation link, a new address.
    "email_link": Rule("5/hour"),
    # Authenticator and recovery codes checked on the account's two-factor page (turning it
    # on or off, new recovery codes): a stolen session must not guess its way through.
    "two_factor": Rule("10/10 minutes"),
}


class RateLimiter:
    def __init__(self, settings: Settings, store: LimitStore | None = None) -> None:
        self.enabled = settings.rate_limits_enabled
        self._store = store or LimitStore(settings)
        self._limiter = strategies.MovingWindowRateLimiter(self._store.storage)
        self._items: dict[str, tuple[RateLimitItem, RateLimitItem | None]] = {
            name: (parse(rule.default), parse(rule.new_account) if rule.new_account else None)
            for name, rule in RULES.items()
        }

    def hit(self, name: str, key: str, *, new_account: bool = False) -> None:
        """Count one action; raise TooManyRequests when over the limit (nothing is counted)."""
        if not self.enabled:
            return
        default, strict = self._items[name]
        item = strict if new_account and strict is not None else default
        try:
            allowed = self._limiter.hit(item, name, key)
        except StorageError as exc:
            self._store.failed(exc)  # let it through: the counters are out, not the site
            return
        self._store.answered()
        if not allowed:
            reset_at = self._limiter.get_window_stats(item, name, key).reset_time
            wait = max(1, int(reset_at - utcnow().timestamp()) + 1)
            raise TooManyRequests(
                wait,
                _("You are doing that too often. Try again in %(seconds)d seconds.")
                % {"seconds": wait},
            )


def limited(name: str) -> Any:
    """A route dependency: one `name` action per request, keyed by account (else address)."""

    async def check(request: Request, viewer: Annotated[Viewer, Depends(get_viewer)]) -> None:
        limiter: RateLimiter = request.app.state.rate_limiter
        if not limiter.enabled:
            return  # no counter to ask: no trip to a worker thread either
        key = f"user:{viewer.user_id}" if viewer.user_id else f"ip:{client_ip(request)}"
        # The counters may be in Redis: asked from a worker thread, never the event loop.
        await run_in_threadpool(limiter.hit, name, key, new_account=viewer.trust_level == 0)

    return Depends(check)
