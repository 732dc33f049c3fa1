"""The short mixed load of `make check-deploy` (scripts/deploy_local.py), and its checks.

Through the proxy, for a few seconds, on loopback only:

- anonymous readers fetch thread pages, forum pages, search results and static files; each
  reader spreads its requests over several loopback source addresses (127.0.0.0/8 is all
  loopback), as distinct visitors would be, so the per-address search limit applies to each;
- signed-in members (the demo's) answer threads and vote on posts (+1, -1 or retracting) at a
  steady pace that stays inside their rate limits, and read between writes; after each answer
  the member's own page must show it.

Then, from the database and the site: no request failed (no 5xx, no connection error, no status
other than the one expected), every answer the site accepted (303 naming its post) is a row and
no other answer carries this run's marker, every accepted vote is the member's vote row and each
post's score moved by exactly the accepted votes, the outbox is drained, and searching the first
answer's unique word finds its thread.
"""

from __future__ import annotations

import random
import re
import statistics
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

BRAND = "acme"
MEMBERS = ("jordan_k", "priya", "techie_tom", "carlos.m")
DEMO_PASSWORD = "community-demo-2026"  # noqa: S105 - the documented demo login (demo_content.py)
READERS = 3
ADDRESSES_PER_READER = 8
# Per member, inside the rate limits (community/core/ratelimit.py: 20 posts per 10 minutes,
# 60 votes per minute), so that every write is expected to be accepted.
ANSWERS_PER_MEMBER = 12
VOTES_PER_MEMBER = 40
SEARCH_TERMS = ("router", "roaming", "battery", "bill", "esim", "wifi", "refund", "fibra")
STATIC_FILES = ("/static/favicon.svg",)
DRAIN_SECONDS = 45.0
SEARCH_SECONDS = 30.0
TIMEOUT = httpx.Timeout(30.0, connect=5.0)

_STARTED = time.monotonic()


def say(message: str) -> None:
    """A line of the run's log, with the seconds since it started (where the time goes)."""
    print(f"{time.monotonic() - _STARTED:5.1f}s {message}", flush=True)


_CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')
_POST_IN_LOCATION = re.compile(r"#post-(\d+)$")


@dataclass(frozen=True)
class Plan:
    """What the load may touch, read from the database before it starts."""

    forums: list[str]
    threads: list[int]
    probe_thread: int
    member_ids: dict[str, int]
    votable: dict[str, list[int]]  # per member: visible posts on open threads, not their own
    scores_before: dict[int, int]
    votes_before: dict[tuple[int, int], int]
    marker: str = field(default_factory=lambda: f"dl{uuid.uuid4().hex[:8]}")


@dataclass
class Tally:
    """What the load saw, shared by its threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)
    failure_count: int = 0
    answers: dict[int, tuple[int, str]] = field(default_factory=dict)  # post -> (thread, word)
    votes: dict[tuple[int, int], int] = field(default_factory=dict)  # (user, post) -> value

    def record(self, kind: str, seconds: float, problem: str | None = None) -> None:
        with self.lock:
            self.requests[kind] += 1
            self.latencies[kind].append(seconds)
            if problem is not None:
                self.failure_count += 1
                if len(self.failures) < 20:
                    self.failures.append(f"{kind}: {problem}")


def _request(
    tally: Tally,
    client: httpx.Client,
    kind: str,
    method: str,
    url: str,
    expected: int,
    data: dict[str, str] | None = None,
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = client.request(method, url, data=data)
    except httpx.HTTPError as exc:
        tally.record(kind, time.perf_counter() - started, f"{url}: {type(exc).__name__} {exc}")
        return None
    problem = None
    if response.status_code != expected:
        problem = f"{method} {url}: {response.status_code} (expected {expected})"
    tally.record(kind, time.perf_counter() - started, problem)
    return response if problem is None else None


# --- the plan ------------------------------------------------------------------------------


def make_plan(database_url: str) -> Plan:
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        forums = [
            row[0]
            for row in conn.execute(
                "SELECT f.slug FROM forums f JOIN brands b ON b.id = f.brand_id "
                "WHERE b.slug = %s ORDER BY f.position",
                (BRAND,),
            )
        ]
        open_threads = conn.execute(
            "SELECT t.id, count(p.id) FROM threads t JOIN forums f ON f.id = t.forum_id "
            "JOIN brands b ON b.id = f.brand_id "
            "LEFT JOIN posts p ON p.thread_id = t.id AND NOT p.is_question "
            "  AND p.visibility = 'visible' "
            "WHERE b.slug = %s AND t.visibility = 'visible' AND t.locked_at IS NULL "
            "  AND t.merged_into_id IS NULL AND t.status NOT IN ('closed', 'locked') "
            "GROUP BY t.id ORDER BY t.id",
            (BRAND,),
        ).fetchall()
        member_ids = dict(
            conn.execute(
                "SELECT username_key, id FROM users WHERE username_key = ANY(%s)", (list(MEMBERS),)
            ).fetchall()
        )
        posts = conn.execute(
            "SELECT id, author_id, score FROM posts WHERE visibility = 'visible' "
            "AND thread_id = ANY(%s)",
            ([thread for thread, _answers in open_threads],),
        ).fetchall()
        votes_before = {
            (user, post): value
            for user, post, value in conn.execute(
                "SELECT user_id, post_id, value FROM votes WHERE user_id = ANY(%s)",
                (list(member_ids.values()),),
            )
        }
    if not forums or len(open_threads) < 2 or len(member_ids) != len(MEMBERS):
        raise RuntimeError("the demo data is missing (forums, open threads or members)")
    # The first answer of the run goes to the thread with the fewest answers, so that it is
    # among the answers its thread's search document holds (kb/documents.py: the first five).
    probe_thread = min(open_threads, key=lambda row: (row[1], row[0]))[0]
    return Plan(
        forums=forums,
        threads=[thread for thread, _answers in open_threads],
        probe_thread=probe_thread,
        member_ids=member_ids,
        votable={
            name: [post for post, author, _score in posts if author != user]
            for name, user in member_ids.items()
        },
        scores_before={post: score for post, _author, score in posts},
        votes_before=votes_before,
    )


# --- the load ------------------------------------------------------------------------------


def reader(plan: Plan, tally: Tally, base_url: str, number: int, deadline: float) -> None:
    """An anonymous visitor reading pages, over several loopback source addresses."""
    clients = [
        httpx.Client(
            base_url=base_url,
            timeout=TIMEOUT,
            transport=httpx.HTTPTransport(local_address=f"127.0.{number + 1}.{index + 1}"),
        )
        for index in range(ADDRESSES_PER_READER)
    ]
    choose = random.Random(number)  # noqa: S311 - load shape, not security
    turn = 0
    try:
        while time.monotonic() < deadline:
            client = clients[turn % len(clients)]
            turn += 1
            roll = choose.random()
            if roll < 0.5:
                url, kind = f"/t/{choose.choice(plan.threads)}", "read thread"
            elif roll < 0.75:
                url, kind = f"/b/{BRAND}/{choose.choice(plan.forums)}", "read forum"
            elif roll < 0.95:
                term = choose.choice(SEARCH_TERMS)
                url, kind = f"/b/{BRAND}/search?q={term}&scope=community", "search"
            else:
                url, kind = choose.choice(STATIC_FILES), "static"
            _request(tally, client, kind, "GET", url, 200)
    finally:
        for client in clients:
            client.close()


def _csrf(tally: Tally, client: httpx.Client, path: str) -> str | None:
    response = _request(tally, client, "member read", "GET", path, 200)
    match = _CSRF_META.search(response.text) if response is not None else None
    return match.group(1) if match else None


@dataclass
class Member:
    name: str
    user_id: int
    client: httpx.Client
    token: str


def sign_in(plan: Plan, tally: Tally, base_url: str, name: str) -> Member | None:
    """A demo member signed in through the proxy, as a browser would (before the clock starts:
    password hashing is slow on purpose)."""
    # A browser's form posts name their origin: the proxy must pass Host on for it to match.
    client = httpx.Client(base_url=base_url, timeout=TIMEOUT, headers={"Origin": base_url})
    token = _csrf(tally, client, "/login")
    form = {"login": name, "password": DEMO_PASSWORD, "csrf_token": token or ""}
    if _request(tally, client, "sign in", "POST", "/login", 303, form) is not None:
        token = _csrf(tally, client, f"/t/{plan.probe_thread}")
        if token is not None:
            return Member(name, plan.member_ids[name], client, token)
    client.close()
    return None


def member(plan: Plan, tally: Tally, who: Member, deadline: float) -> None:
    """A signed-in member: writes at a steady pace within the limits, reads in between."""
    choose = random.Random(who.name)  # noqa: S311 - load shape, not security
    writes = ["answer"] * ANSWERS_PER_MEMBER + ["vote"] * VOTES_PER_MEMBER
    choose.shuffle(writes)
    probing = who.name == MEMBERS[0]
    if probing:
        writes.insert(0, "answer")  # the probe answer, first of the run
    started = time.monotonic()
    pace = (deadline - started) / (len(writes) + 1)
    done = 0
    while time.monotonic() < deadline:
        if done < len(writes) and time.monotonic() >= started + done * pace:
            if writes[done] == "answer":
                thread = plan.probe_thread if probing and done == 0 else None
                _answer(plan, tally, who, thread or choose.choice(plan.threads))
            else:
                _vote(plan, tally, who, choose)
            done += 1
        else:
            thread = choose.choice(plan.threads)
            _request(tally, who.client, "member read", "GET", f"/t/{thread}", 200)


def _answer(plan: Plan, tally: Tally, who: Member, thread: int) -> None:
    word = f"{plan.marker}w{uuid.uuid4().hex[:10]}"
    body = (
        f"Restarting the router after the update fixed this for me; reference {word} "
        f"(written by the deployment check {plan.marker})."
    )
    form = {"body": body, "csrf_token": who.token}
    response = _request(tally, who.client, "answer", "POST", f"/t/{thread}/answers", 303, form)
    if response is None:
        return
    location = response.headers.get("location", "")
    found = _POST_IN_LOCATION.search(location)
    if found is None:
        tally.record("answer", 0.0, f"accepted without naming its post: {location!r}")
        return
    with tally.lock:
        tally.answers[int(found.group(1))] = (thread, word)
    # Read your own write: the member's page (never the anonymous cache) shows it.
    page = _request(tally, who.client, "member read", "GET", location.split("#")[0], 200)
    if page is not None and word not in page.text:
        tally.record("member read", 0.0, f"the member's page {location} lacks their answer")


def _vote(plan: Plan, tally: Tally, who: Member, choose: random.Random) -> None:
    post = choose.choice(plan.votable[who.name])
    value = choose.choice((1, 1, -1, 0))
    form = {"value": str(value), "csrf_token": who.token}
    if _request(tally, who.client, "vote", "POST", f"/posts/{post}/vote", 303, form) is not None:
        with tally.lock:
            tally.votes[(who.user_id, post)] = value


# --- the checks ----------------------------------------------------------------------------


def check_writes(plan: Plan, tally: Tally, database_url: str) -> list[str]:
    failures: list[str] = []
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT id, thread_id, body_source FROM posts WHERE body_source LIKE %s",
            (f"%{plan.marker}%",),
        ).fetchall()
        votes = {
            (user, post): value
            for user, post, value in conn.execute(
                "SELECT user_id, post_id, value FROM votes WHERE user_id = ANY(%s)",
                (list(plan.member_ids.values()),),
            )
        }
        scores = dict(
            conn.execute(
                "SELECT id, score FROM posts WHERE id = ANY(%s)", (list(plan.scores_before),)
            ).fetchall()
        )
    stored = {post: (thread, body) for post, thread, body in rows}
    lost = [post for post in tally.answers if post not in stored]
    unconfirmed = [post for post in stored if post not in tally.answers]
    wrong = [
        post
        for post, (thread, word) in tally.answers.items()
        if post in stored and (stored[post][0] != thread or word not in stored[post][1])
    ]
    if lost:
        failures.append(f"accepted answers missing from the database: {sorted(lost)[:10]}")
    if unconfirmed:
        failures.append(f"answers stored without an accepted response: {sorted(unconfirmed)[:10]}")
    if wrong:
        failures.append(f"answers stored on another thread or with another text: {wrong[:10]}")
    expected_votes = plan.votes_before | tally.votes
    for pair, value in expected_votes.items():
        if votes.get(pair, 0) != value:
            failures.append(f"vote {pair}: accepted {value}, stored {votes.get(pair, 0)}")
    for post, before in plan.scores_before.items():
        moved = sum(
            value - plan.votes_before.get((user, voted), 0)
            for (user, voted), value in tally.votes.items()
            if voted == post
        )
        if scores.get(post) != before + moved:
            failures.append(f"post {post}: score {scores.get(post)}, expected {before + moved}")
    say(
        f"  writes: {len(tally.answers)} answers accepted, {len(stored)} in the database; "
        f"{len(tally.votes)} (member, post) votes accepted, "
        f"{sum(1 for pair in tally.votes if votes.get(pair, 0) == tally.votes[pair])} as stored"
    )
    return failures


def wait_for_outbox(database_url: str, alive: Callable[[], None]) -> list[str]:
    """The workers drain every event the load caused (and none keeps failing)."""
    deadline = time.monotonic() + DRAIN_SECONDS
    started = time.monotonic()
    with psycopg.connect(database_url, connect_timeout=10, autocommit=True) as conn:
        while True:
            alive()
            # What is due: a badge check waits a minute on purpose (community.members.badges).
            pending = conn.execute(
                "SELECT kind, count(*) FROM outbox_events WHERE done_at IS NULL"
                " AND available_at <= now() GROUP BY kind"
            ).fetchall()
            if not pending:
                total, retried = conn.execute(
                    "SELECT count(*), count(*) FILTER (WHERE attempts > 1) FROM outbox_events"
                ).fetchone() or (0, 0)
                say(
                    f"  outbox: drained in {time.monotonic() - started:.1f}s "
                    f"({total} events handled, {retried} needed a retry)"
                )
                return []
            if time.monotonic() > deadline:
                return [f"the outbox was not drained in {DRAIN_SECONDS:.0f}s: {pending}"]
            time.sleep(0.2)


def wait_for_search(plan: Plan, tally: Tally, base_url: str) -> list[str]:
    """An anonymous search for the first answer's unique word finds its thread."""
    probe = [word for (thread, word) in tally.answers.values() if thread == plan.probe_thread]
    if not probe:
        return ["no answer was accepted on the probe thread: nothing to search for"]
    word = probe[0]
    deadline = time.monotonic() + SEARCH_SECONDS
    started = time.monotonic()
    with httpx.Client(base_url=base_url, timeout=TIMEOUT) as client:
        while time.monotonic() < deadline:
            response = client.get(f"/b/{BRAND}/search", params={"q": word, "scope": "community"})
            if response.status_code != 200:
                return [f"search for {word}: {response.status_code}"]
            if f'href="/t/{plan.probe_thread}' in response.text:
                waited = time.monotonic() - started
                say(f"  search: {word} finds thread {plan.probe_thread} ({waited:.1f}s)")
                return []
            time.sleep(0.2)
    return [f"search for {word} did not find thread {plan.probe_thread} in {SEARCH_SECONDS:.0f}s"]


def check_proxy(base_url: str, proxy_log: Path, metrics_token: str) -> list[str]:
    """Static files come from the proxy (its caching header); the site answers with the
    request id the proxy logged; /metrics answers Prometheus' token only."""
    failures = []
    anonymous = httpx.get(f"{base_url}/metrics", timeout=TIMEOUT)
    scraped = httpx.get(
        f"{base_url}/metrics", headers={"Authorization": f"Bearer {metrics_token}"}, timeout=TIMEOUT
    )
    if anonymous.status_code != 404 or scraped.status_code != 200:
        failures.append(
            f"/metrics: {anonymous.status_code} without the token (expected 404), "
            f"{scraped.status_code} with it (expected 200)"
        )
    elif "community_http_request_duration_seconds" not in scraped.text:
        failures.append("/metrics has no request latencies")
    static = httpx.get(f"{base_url}{STATIC_FILES[0]}", timeout=TIMEOUT)
    if static.headers.get("cache-control") != "max-age=3600":
        failures.append(f"{STATIC_FILES[0]} was not served by the proxy: {dict(static.headers)}")
    request_id = httpx.get(f"{base_url}/healthz", timeout=TIMEOUT).headers.get("x-request-id")
    if not request_id or f"id={request_id}" not in proxy_log.read_text(errors="replace"):
        failures.append(f"/healthz answered with request id {request_id!r}, not the proxy's")
    return failures


def report(tally: Tally, seconds: float) -> None:
    total = sum(tally.requests.values())
    say(f"  load: {total} requests in {seconds:.1f}s ({total / seconds:.0f}/s), "
          f"{tally.failure_count} failed")  # fmt: skip
    for kind, count in sorted(tally.requests.items()):
        latencies = sorted(tally.latencies[kind])
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        say(
            f"    {kind:<12} {count:>6}  p50 {statistics.median(latencies) * 1000:6.1f} ms  "
            f"p99 {p99 * 1000:6.1f} ms"
        )


def _thread(tally: Tally, target: Callable[..., None], *args: object) -> threading.Thread:
    """A load thread whose crash is a failure of the run, not a quietly shorter load."""

    def guarded() -> None:
        try:
            target(*args)
        except Exception as exc:  # any crash is reported, with its type
            tally.record("load thread", 0.0, f"{target.__name__} crashed: {exc!r}")

    return threading.Thread(target=guarded)


def drive_and_check(
    base_url: str,
    database_url: str,
    seconds: float,
    alive: Callable[[], None],
    proxy_log: Path,
    metrics_token: str,
) -> list[str]:
    """Run the load against the proxy at base_url, then check; the failures, if any."""
    plan = make_plan(database_url)
    # The demo's own events (scoring, indexing) first, so the load meets a settled site.
    failures = wait_for_outbox(database_url, alive)
    signing_in = Tally()
    with ThreadPoolExecutor(len(MEMBERS)) as pool:
        members = list(pool.map(lambda name: sign_in(plan, signing_in, base_url, name), MEMBERS))
    failures += signing_in.failures
    say(f"== mixed load for {seconds:.0f}s: {READERS} readers, {len(MEMBERS)} members")
    tally = Tally()
    deadline = time.monotonic() + seconds
    threads = [
        _thread(tally, reader, plan, tally, base_url, number, deadline) for number in range(READERS)
    ] + [_thread(tally, member, plan, tally, who, deadline) for who in members if who is not None]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for who in members:
        if who is not None:
            who.client.close()
    report(tally, time.monotonic() - started)
    alive()
    failures += tally.failures
    if tally.failure_count > len(tally.failures):
        failures.append(f"... {tally.failure_count - len(tally.failures)} more failed requests")
    say("== checking")
    failures += check_writes(plan, tally, database_url)
    failures += wait_for_outbox(database_url, alive)
    failures += wait_for_search(plan, tally, base_url)
    failures += check_proxy(base_url, proxy_log, metrics_token)
    return failures
