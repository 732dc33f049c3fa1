"""Counting failures and requests: the counter store of rate limits and login throttling
(memory, or Redis shared by every web process) and the login throttle itself."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from limits import RateLimitItem, RateLimitItemPerMinute, storage, strategies
from limits.errors import StorageError

from community.core.clock import utcnow
from community.core.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Throttled:
    retry_after_seconds: int


# Redis answers in well under a millisecond; waiting longer for a lost one would only hold every
# request (limits fail open, so a slow store must fail fast).
REDIS_TIMEOUT_SECONDS = 1.0


def limits_storage(settings: Settings) -> storage.Storage:
    """Counters for the `limits` library: in memory (one process), or in Redis when REDIS_URL
    is set so every web process shares them. Redis errors surface as StorageError, which
    callers treat as "allow": an outage of the counter store must not take the site down."""
    if not settings.redis_url:
        return storage.MemoryStorage()
    return storage.RedisStorage(
        settings.redis_url,
        key_prefix=settings.rate_limit_prefix,
        wrap_exceptions=True,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )


class LimitStore:
    """The counters of rate limits and login throttling, and whether their store answers.

    When Redis does not answer, limits let requests through (an outage of the counters must
    not take the site down). That is said once per outage in the log, when it starts and when
    it ends, not once per request, and /readyz reports it while it lasts."""

    def __init__(self, settings: Settings) -> None:
        self.shared = bool(settings.redis_url)
        self.storage = limits_storage(settings)
        self._lock = threading.Lock()
        self._down_since: datetime | None = None

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    def failed(self, error: BaseException | None = None) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = utcnow()
        logger.warning(
            "rate limits degraded: the counter store (Redis) does not answer (%s); rate limits "
            "and login throttling let requests through until it does",
            error or "no answer to a ping",
        )

    def answered(self) -> None:
        if self._down_since is None:  # the usual case, without taking the lock
            return
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            logger.warning(
                "rate limits restored: the counter store answers again after %d s",
                (utcnow() - since).total_seconds(),
            )

    def probe(self) -> bool:
        """Ask the store now (for /readyz): True when it answers."""
        if not self.shared or self.storage.check():
            self.answered()
            return True
        self.failed()
        return False


class LoginThrottle:
    """Counts failed logins in moving windows so that guessing is slow but nobody can lock an
    owner out of their account from somewhere else.

    - Per account and client address (LOGIN_FAILURES_PER_ACCOUNT): after that many failures
      this address may not try this account again until the window moves on. Failures from
      other addresses never count here, so the owner's own address is never blocked by them.
    - Per client address (LOGIN_FAILURES_PER_IP), whatever the account: stops one client
      spraying many accounts.
    - Per account from every address (LOGIN_FAILURES_ACCOUNT_WIDE, much larger): a sign of a
      distributed attack on it. It only slows: from then on an address that already failed on
      the account in the window gets no further try on it, while an address without failures
      still gets its try, so the right password from the owner's address still signs in.

    Memory storage by default (one process); REDIS_URL shares counters between web processes.
    A success clears that address's count for the account only: the account-wide count stays,
    so an attack does not speed up again each time the owner signs in.
    """

    def __init__(self, settings: Settings, store: LimitStore | None = None) -> None:
        self._store = store or LimitStore(settings)
        self._limiter = strategies.MovingWindowRateLimiter(self._store.storage)
        minutes = settings.login_throttle_minutes
        self._per_pair = RateLimitItemPerMinute(settings.login_failures_per_account, minutes)
        self._per_ip = RateLimitItemPerMinute(settings.login_failures_per_ip, minutes)
        self._per_account = RateLimitItemPerMinute(settings.login_failures_account_wide, minutes)

    @staticmethod
    def _keys(account_key: str, ip: str) -> tuple[str, str, str]:
        # An address never holds a space, so "pair:<ip> <account>" cannot be read two ways.
        return f"pair:{ip} {account_key}", f"ip:{ip}", f"account:{account_key}"

    def check(self, account_key: str, ip: str) -> Throttled | None:
        pair, address, account = self._keys(account_key, ip)
        now = utcnow().timestamp()
        waits = []
        try:
            for item, key in ((self._per_pair, pair), (self._per_ip, address)):
                if not self._limiter.test(item, "login", key):
                    waits.append(self._wait(item, key, now))
            if not waits and not self._limiter.test(self._per_account, "login", account):
                stats = self._limiter.get_window_stats(self._per_pair, "login", pair)
                if stats.remaining < self._per_pair.amount:  # this address failed already
                    waits.append(max(1, int(stats.reset_time - now) + 1))
        except StorageError as exc:
            self._store.failed(exc)
            return None
        self._store.answered()
        return Throttled(max(waits)) if waits else None

    def _wait(self, item: RateLimitItem, key: str, now: float) -> int:
        reset_at = self._limiter.get_window_stats(item, "login", key).reset_time
        return max(1, int(reset_at - now) + 1)

    def record_failure(self, account_key: str, ip: str) -> None:
        pair, address, account = self._keys(account_key, ip)
        try:
            self._limiter.hit(self._per_pair, "login", pair)
            self._limiter.hit(self._per_ip, "login", address)
            self._limiter.hit(self._per_account, "login", account)
        except StorageError as exc:
            self._store.failed(exc)

    def record_success(self, account_key: str, ip: str) -> None:
        pair, _address, _account = self._keys(account_key, ip)
        try:
            self._limiter.clear(self._per_pair, "login", pair)
        except StorageError as exc:
            self._store.failed(exc)
