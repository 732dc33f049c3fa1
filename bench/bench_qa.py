"""Benchmark of the Q&A pages on PostgreSQL.

Creates a throwaway database, seeds one big forum (50,000 threads / 250,000 posts by default),
then times in-process requests (Starlette's TestClient, no network) to the thread page, the
forum page (the first page and one around page 1,000) and the vote action, and prints the
median, p90, p99 and max server time plus the SQL statements each request ran.

    .venv/bin/python bench/bench_qa.py                   # full size (about 2-3 minutes)
    .venv/bin/python bench/bench_qa.py --threads 2000    # smoke test (well under a minute)
    .venv/bin/python bench/bench_qa.py --help

See bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import enum
import itertools
import os
import random
import re
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import common
import psycopg
from common import (
    DEFAULT_ADMIN_URL,
    PostgresDatabase,
    ServerTimer,
    bench_settings,
    busy_cpus,
    calibrate,
    code_version,
    console,
    cpu_counters,
    exit_cleanly_on_signals,
    percentile,
    run_main,
    throwaway_postgres,
    workspace,
)
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.types.json import Jsonb
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import Engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from community.all_models import Base
from community.app import create_app
from community.core import migrate
from community.core.activity_models import Vote
from community.core.auth import Passwords
from community.core.clock import utcnow
from community.core.db import make_engine
from community.core.markdown import HTML_VERSION, render_markdown
from community.core.models import Brand, Forum, Post, Role, Thread, User, Visibility
from community.core.settings import Settings
from community.reputation import ACCEPTED, ACCEPTER, DOWNVOTE, UPVOTE_ANSWER, UPVOTE_QUESTION
from community.thread_reading import PAGE_SIZE, encode_cursor
from community.voting import MILESTONES

if TYPE_CHECKING:
    from httpx2 import Response  # what Starlette's TestClient returns

BENCH_PASSWORD = "bench-orange-kettle-2718"  # noqa: S105 - the seeded accounts' password
THREAD_P99_TARGET_MS = 25.0
DEEP_ROW = 30_000  # the deep forum page starts after this row (page ~1,000 at 30 per page)
CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')
YEARS = 3


# --- options ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    threads: int
    posts_per_thread: float
    users: int
    tags: int
    requests: int
    warmup: int
    database_url: str
    keep: bool
    seed_only: bool
    reuse: str | None
    explain: bool
    seed: int

    @property
    def forum_requests(self) -> int:
        return max(1, round(self.requests * 0.6))


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        description=(
            "Seed a big forum on a throwaway PostgreSQL database and time the thread page, "
            "the forum page (first and deep) and the vote action in-process."
        )
    )
    parser.add_argument("--threads", type=int, default=50_000, help="threads to seed (50000)")
    parser.add_argument(
        "--posts-per-thread",
        type=float,
        default=5.0,
        help="average posts per thread, question included (5.0: 1 question + 4 answers)",
    )
    parser.add_argument("--users", type=int, default=2_000, help="members to seed (2000)")
    parser.add_argument("--tags", type=int, default=300, help="distinct tags to seed (300)")
    parser.add_argument(
        "--requests",
        type=int,
        help=(
            "measured requests for the thread pages and the vote; forum pages get 60%% "
            "(500; 100 below 10,000 threads, so a smoke run stays short)"
        ),
    )
    parser.add_argument(
        "--warmup", type=int, default=20, help="unmeasured requests per endpoint first (20)"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_ADMIN_URL,
        help=f"admin URL used to create and drop the throwaway database ({DEFAULT_ADMIN_URL})",
    )
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    parser.add_argument(
        "--seed-only", action="store_true", help="seed, keep the database and stop (no timing)"
    )
    parser.add_argument(
        "--reuse",
        metavar="NAME",
        help="time against an existing database seeded earlier with --keep (no seeding, kept)",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="after timing, print EXPLAIN ANALYZE of every SELECT one request of each endpoint ran",
    )
    parser.add_argument("--seed", type=int, default=20_240_601, help="random seed")
    args = parser.parse_args(argv)
    if args.threads < 10:
        parser.error("--threads must be at least 10")
    if args.posts_per_thread < 1:
        parser.error("--posts-per-thread must be at least 1")
    if args.users < 20:
        parser.error("--users must be at least 20")
    if args.requests is None:
        args.requests = 500 if args.threads >= 10_000 or args.reuse else 100
    if args.requests < 1 or args.warmup < 0:
        parser.error("--requests must be positive and --warmup not negative")
    return Options(
        threads=args.threads,
        posts_per_thread=args.posts_per_thread,
        users=args.users,
        tags=max(1, args.tags),
        requests=args.requests,
        warmup=args.warmup,
        database_url=args.database_url,
        keep=args.keep or args.seed_only,
        seed_only=args.seed_only,
        reuse=args.reuse,
        explain=args.explain,
        seed=args.seed,
    )


# --- text for the seeded content -------------------------------------------------------------

FIRST_NAMES = (
    "Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Jamie", "Robin", "Chris", "Pat",
    "Lena", "Marta", "Yusuf", "Priya", "Kenji", "Olu", "Ines", "Tomas", "Aisha", "Noah",
    "Emma", "Liam", "Sofia", "Mateo", "Chloe", "Arjun", "Mei", "Omar", "Freya", "Diego",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Garcia", "Kim", "Novak", "Okafor", "Rossi", "Jensen", "Silva", "Khan", "Muller",
    "Dubois", "Tanaka", "Nowak", "Larsen", "Costa", "Ahmed", "Brown", "Lopez", "Ivanova", "Chen",
)  # fmt: skip
PRODUCTS = (
    "Acme X5", "Acme X5 Pro", "Acme Lite 3", "Acme Fold", "Acme Watch 2", "Acme Buds",
    "HomeHub router", "HomeHub Mesh", "Fibre box", "TV box 4K", "Acme Tab 11", "Acme X4",
)  # fmt: skip
PLANS = ("Unlimited", "Unlimited Plus", "Basic 10 GB", "Family Share", "Prepaid 30", "Fibre 500")
FEATURES = (
    "Wi-Fi calling", "VoLTE", "5G", "eSIM", "hotspot", "visual voicemail", "roaming",
    "dual SIM", "call forwarding", "parental controls", "auto-pay", "data saver",
)  # fmt: skip
APPS = ("My Acme", "Acme TV", "HomeHub", "Acme Wallet")
ACTIONS = (
    "move my number to an eSIM", "turn on Wi-Fi calling", "share data with my family",
    "change my billing date", "set up call forwarding", "transfer contacts", "update the router",
    "cancel an add-on", "get a PUK code", "use my phone abroad", "pause my plan",
    "download my invoices",
)  # fmt: skip
SYMPTOMS = (
    "keeps dropping calls", "drains the battery overnight", "shows no service",
    "restarts by itself", "gets very slow in the evening", "loses the Wi-Fi connection",
    "cannot send MMS", "is stuck on the logo",
)  # fmt: skip
EVENTS = (
    "the last update", "moving house", "switching plans", "a SIM swap", "the outage on Monday",
    "a factory reset", "porting my number",
)  # fmt: skip
THINGS = ("my last invoice", "roaming", "a device I returned", "the activation fee", "an add-on")
SETTINGS_PATHS = (
    "Network & internet", "Connections > Mobile networks", "Calls > Wi-Fi calling",
    "SIM manager", "System > Reset options", "Battery > Background usage",
)  # fmt: skip

TITLE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "question": (
        "How do I {action} on my {product}?",
        "Can I {action} without visiting a store?",
        "Is {feature} included in the {plan} plan?",
        "What is the quickest way to {action}?",
        "Where do I find {feature} settings in the {app} app?",
    ),
    "problem": (
        "{product} {symptom} after {event}",
        "{feature} stopped working on my {product}",
        "Error {code} when I try to {action}",
        "{product} {symptom} since {event}",
    ),
    "complaint": (
        "Charged twice for {thing}",
        "Still waiting for a refund for {thing} after {weeks} weeks",
        "Nobody answers my question about {thing}",
    ),
    "idea": (
        "Please add {feature} controls to the {app} app",
        "Idea: let us {action} from the {app} app",
    ),
    "discussion": (
        "What do you think of the {product}?",
        "{plan} or {plan2}: which one is worth it?",
    ),
}
KIND_WEIGHTS = {"question": 55, "problem": 25, "complaint": 7, "idea": 6, "discussion": 7}

QUESTION_SENTENCES = (
    "Since {event} my {product} {symptom}.",
    "I already restarted the phone and reset the network settings, but nothing changed.",
    "It happens at home and at work, so it does not seem to be one location.",
    "I am on the {plan} plan and have been a customer for about two years.",
    "The {app} app shows error `{code}` every time I try.",
    "Is this a known issue, or is it something on my side?",
    "Any ideas before I book a repair appointment?",
    "I tried another SIM card and that one works, so the phone itself seems fine.",
    "The chat agent told me to wait 24 hours, which I did.",
    "I would like to {action} but the option is greyed out.",
    "My partner has the same {product} and does not have this problem.",
    "This started right after {event}; before that everything worked for months.",
)
ANSWER_SENTENCES = (
    "I had exactly the same problem with my {product} last month.",
    "This is a known issue with the current firmware; a fix is rolling out this week.",
    "You can {action} yourself in the {app} app, no need to call.",
    "It is usually the {feature} setting that gets switched off after {event}.",
    "If that does not help, ask for a SIM swap: it is free in any store.",
    "Make sure your plan actually includes {feature}; the {plan} plan does.",
    "Mine was fixed after a factory reset, but back up your photos first.",
    "Support can also refresh the line from their side, which takes about ten minutes.",
    "The outage map in the {app} app shows planned works in your area.",
    "Don't forget to restart after changing it, otherwise nothing happens.",
)
STEPS = (
    "Open **Settings > {setting}**.",
    "Turn **{feature}** off, wait ten seconds and turn it back on.",
    "Restart the {product}.",
    "Sign out of the {app} app and sign in again.",
    "Check for updates under **Settings > System > Software update**.",
    "Remove the eSIM profile and add it again with the QR code from your account page.",
    "Note the error code and send it to support in a private message.",
)
CODE_BLOCKS = (
    "```\n*#06#\n```",
    "```\nAPN:      internet.acme\nMMSC:     http://mms.acme.example\nMMS port: 8080\n```",
    "```\nSettings > {setting} > Reset Wi-Fi, mobile & Bluetooth\n```",
)
TAG_TOPICS = (
    "billing", "roaming", "esim", "wifi-calling", "5g", "coverage", "refund", "contract",
    "upgrade", "battery", "screen", "bluetooth", "voicemail", "sms", "mms", "hotspot", "router",
    "mesh", "fibre", "speed", "outage", "porting", "puk", "invoice", "autopay", "data",
    "family-plan", "prepaid", "tv", "streaming", "apps", "update", "repair", "warranty",
    "accessories", "charging", "camera", "security", "account", "login", "parental-controls",
    "international", "volte", "dual-sim", "insurance", "trade-in", "delivery", "returns",
)  # fmt: skip
TAG_PRODUCTS = (
    "x5", "x5-pro", "lite-3", "fold", "watch-2", "buds", "homehub", "homehub-mesh", "fibre-box",
    "tv-box", "tab-11", "x4", "x3", "lite-2",
)  # fmt: skip


def _fill(template: str, rng: random.Random) -> str:
    plan, plan2 = rng.sample(PLANS, 2)
    return template.format(
        product=rng.choice(PRODUCTS),
        plan=plan,
        plan2=plan2,
        feature=rng.choice(FEATURES),
        app=rng.choice(APPS),
        action=rng.choice(ACTIONS),
        symptom=rng.choice(SYMPTOMS),
        event=rng.choice(EVENTS),
        thing=rng.choice(THINGS),
        setting=rng.choice(SETTINGS_PATHS),
        code=f"E{rng.randint(100, 999)}",
        weeks=rng.randint(2, 9),
    )


def _markdown_body(rng: random.Random, sentences: tuple[str, ...], *, answer: bool) -> str:
    """A few hundred characters of Markdown: paragraphs, sometimes steps, code or a link."""
    parts: list[str] = []
    for _ in range(rng.choices((1, 2, 3), weights=(35, 45, 20))[0]):
        count = rng.randint(1, 3)
        parts.append(" ".join(_fill(rng.choice(sentences), rng) for _ in range(count)))
    if rng.random() < (0.45 if answer else 0.15):
        steps = rng.sample(STEPS, rng.randint(2, 5))
        parts.insert(1, "\n".join(f"{n}. {_fill(s, rng)}" for n, s in enumerate(steps, 1)))
    if rng.random() < 0.15:
        parts.append(_fill(rng.choice(CODE_BLOCKS), rng))
    if answer and rng.random() < 0.25:
        number = rng.randint(1000, 9999)
        parts.append(f"More in the [help article](https://support.acme.example/articles/{number}).")
    if rng.random() < 0.2:
        parts.append(f"*Edit:* still the same with the {_fill('{product}', rng)}.")
    return "\n\n".join(parts)


@dataclass(frozen=True)
class Corpus:
    """Distinct bodies rendered once with the site's renderer, then reused by many posts."""

    questions: list[tuple[str, str]]
    answers: list[tuple[str, str]]

    @classmethod
    def build(cls, rng: random.Random, size: int = 300) -> Corpus:
        def render(sentences: tuple[str, ...], *, answer: bool) -> tuple[str, str]:
            source = _markdown_body(rng, sentences, answer=answer)
            return source, render_markdown(source)

        return cls(
            questions=[render(QUESTION_SENTENCES, answer=False) for _ in range(size)],
            answers=[render(ANSWER_SENTENCES, answer=True) for _ in range(size)],
        )


# --- generating the forum --------------------------------------------------------------------


@dataclass(slots=True)
class PostRow:
    thread_index: int
    author_id: int
    is_question: bool
    body: int
    created_at: datetime
    upvotes: int = 0
    downvotes: int = 0
    visibility: str = "visible"
    is_official: bool = False
    id: int = 0

    @property
    def score(self) -> int:
        return self.upvotes - self.downvotes


@dataclass(slots=True)
class ThreadRow:
    id: int
    author_id: int
    title: str
    kind: str
    created_at: datetime
    tag_ids: list[int]
    visibility: str = "visible"
    status: str = "open"
    reply_count: int = 0
    score: int = 0
    view_count: int = 0
    last_activity_at: datetime | None = None
    first_response_at: datetime | None = None
    accepted: PostRow | None = None


@dataclass
class Generated:
    users: list[tuple[Any, ...]]
    tags: list[tuple[Any, ...]]
    threads: list[ThreadRow]
    posts: list[PostRow]
    votes: list[tuple[Any, ...]]
    watches: list[tuple[Any, ...]]
    notifications: list[tuple[Any, ...]]
    thread_tags: list[tuple[int, int]]
    forum_post_count: int = 0
    forum_last_activity: datetime | None = None


def _zipf_cumulative(n: int, exponent: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank + 1) ** exponent for rank in range(n)))


def _long_tail(rng: random.Random, alpha: float, cap: int) -> int:
    """0 most of the time, now and then dozens or hundreds (a Pareto tail)."""
    return min(cap, int(rng.paretovariate(alpha)) - 1)


def _answer_counts(rng: random.Random, threads: int, answers: int) -> list[int]:
    """Skewed answers per thread (many with none or one, a few hot threads with dozens),
    adjusted so the total is exactly `answers`."""
    mean = answers / threads
    base = max(0.05, (mean - 0.15) / 1.135) + 0.5
    counts = [int(rng.expovariate(1.0 / base)) for _ in range(threads)]
    for index in range(threads):
        if rng.random() < 0.03:
            counts[index] = int(counts[index] * rng.uniform(3, 8)) + 5
    difference = answers - sum(counts)
    while difference > 0:
        counts[rng.randrange(threads)] += 1
        difference -= 1
    while difference < 0:
        index = rng.randrange(threads)
        if counts[index] > 0:
            counts[index] -= 1
            difference += 1
    return counts


def generate(
    options: Options,
    corpus: Corpus,
    password_hash: str,
    now: datetime,
    progress: Progress,
) -> Generated:
    rng = random.Random(options.seed)
    user_count = options.users
    start = now - timedelta(days=365 * YEARS)
    span = (now - start).total_seconds()
    vote_cap = min(600, user_count - 2)

    # Users, ranked by how active they are: a few answer a lot, most post once or twice.
    user_ids = list(range(1, user_count + 1))
    ranked = user_ids[:]
    rng.shuffle(ranked)
    roles = dict.fromkeys(user_ids, Role.MEMBER.value)
    for position, user_id in enumerate(ranked[:14]):
        roles[user_id] = (Role.AGENT if position < 8 else Role.MODERATOR).value
    roles[ranked[14]] = Role.ADMIN.value
    answerer_weights = _zipf_cumulative(user_count, 1.0)
    asker_weights = _zipf_cumulative(user_count, 0.4)
    askers_ranked = user_ids[:]
    rng.shuffle(askers_ranked)

    # Tags with a popularity curve.
    names = [*TAG_TOPICS, *TAG_PRODUCTS]
    combinations = [f"{product}-{topic}" for product in TAG_PRODUCTS for topic in TAG_TOPICS]
    names += rng.sample(combinations, max(0, min(options.tags - len(names), len(combinations))))
    names = names[: options.tags]
    tag_weights = _zipf_cumulative(len(names), 1.1)
    tag_thread_counts = [0] * len(names)

    thread_total = options.threads
    answer_total = round(thread_total * options.posts_per_thread) - thread_total
    answer_counts = _answer_counts(rng, thread_total, answer_total)
    created = sorted(
        start + timedelta(seconds=span * rng.random() ** 0.8) for _ in range(thread_total)
    )
    kinds = list(KIND_WEIGHTS)
    kind_weights = list(KIND_WEIGHTS.values())
    answered_by_others = sum(1 for count in answer_counts if count > 0)
    solve_probability = min(1.0, 0.40 * thread_total / max(1, answered_by_others * 0.93))

    threads: list[ThreadRow] = []
    posts: list[PostRow] = []
    thread_tags: list[tuple[int, int]] = []
    task = progress.add_task("generate threads and posts", total=thread_total)
    for index in range(thread_total):
        thread_id = index + 1
        asker = askers_ranked[rng.choices(range(user_count), cum_weights=asker_weights)[0]]
        kind = rng.choices(kinds, weights=kind_weights)[0]
        tag_count = rng.choices((0, 1, 2, 3, 4, 5), weights=(10, 25, 30, 20, 10, 5))[0]
        tag_indexes = set(rng.choices(range(len(names)), cum_weights=tag_weights, k=tag_count))
        title = _fill(rng.choice(TITLE_TEMPLATES[kind]), rng)
        thread = ThreadRow(
            id=thread_id,
            author_id=asker,
            title=title[0].upper() + title[1:],
            kind=kind,
            created_at=created[index],
            tag_ids=sorted(tag_index + 1 for tag_index in tag_indexes),
        )
        question = PostRow(
            thread_index=index,
            author_id=asker,
            is_question=True,
            body=rng.randrange(len(corpus.questions)),
            created_at=thread.created_at,
            upvotes=_long_tail(rng, 1.6, vote_cap),
            downvotes=_long_tail(rng, 3.0, 20),
        )
        thread_posts = [question]
        moment = thread.created_at
        for number in range(answer_counts[index]):
            gap_hours = rng.expovariate(1 / (3 if number == 0 else 10))
            if rng.random() < 0.05:
                gap_hours += rng.uniform(48, 24 * 200)  # someone revives an old thread
            moment = min(moment + timedelta(hours=gap_hours), now - timedelta(minutes=1))
            if rng.random() < 0.1:
                author = asker  # the asker follows up ("thanks, that worked")
            else:
                author = ranked[rng.choices(range(user_count), cum_weights=answerer_weights)[0]]
            roll = rng.random()  # a few answers were deleted, or hidden by a moderator
            visibility = "deleted" if roll < 0.01 else "hidden" if roll < 0.015 else "visible"
            thread_posts.append(
                PostRow(
                    thread_index=index,
                    author_id=author,
                    is_question=False,
                    body=rng.randrange(len(corpus.answers)),
                    created_at=moment,
                    upvotes=_long_tail(rng, 1.6, vote_cap),
                    downvotes=_long_tail(rng, 3.0, 20),
                    visibility=visibility,
                    is_official=roles[author] == Role.AGENT.value,
                )
            )
        answers = [p for p in thread_posts[1:] if p.visibility == "visible"]
        for post in thread_posts:
            if post.visibility != "visible":
                post.upvotes = post.downvotes = 0
        # A few questions nobody answered were deleted by their askers.
        if not thread_posts[1:] and rng.random() < 0.01:
            thread.visibility = question.visibility = "deleted"
            question.upvotes = question.downvotes = 0
        others = [p for p in answers if p.author_id != asker]
        if others and rng.random() < solve_probability:
            if rng.random() < 0.6:
                accepted = max(others, key=lambda post: post.score)
            else:
                accepted = rng.choice(others)
            accepted.upvotes = min(vote_cap, accepted.upvotes + rng.randint(1, 5))
            thread.accepted = accepted
            thread.status = "solved"
        elif answers:
            thread.status = "answered"
        thread.reply_count = len(answers)
        thread.score = question.score
        thread.last_activity_at = max(post.created_at for post in [question, *answers])
        thread.first_response_at = min((p.created_at for p in others), default=None)
        age_years = (now - thread.created_at).days / 365
        thread.view_count = int(
            rng.lognormvariate(3.8, 1.0) * (1 + age_years)
            + 12 * thread.reply_count
            + 15 * max(0, thread.score)
        )
        if thread.visibility == "visible":
            for tag_index in tag_indexes:
                tag_thread_counts[tag_index] += 1
        thread_tags.extend((thread_id, tag_id) for tag_id in thread.tag_ids)
        threads.append(thread)
        posts.extend(thread_posts)
        if index % 1000 == 999:
            progress.advance(task, 1000)
    progress.update(task, completed=thread_total)

    # Post ids follow creation time across the whole forum, as they would in production.
    posts.sort(key=lambda post: post.created_at)
    for number, post in enumerate(posts, 1):
        post.id = number

    votes: list[tuple[Any, ...]] = []
    notifications: list[tuple[Any, ...]] = []
    watches: list[tuple[Any, ...]] = []
    reputation = Counter[int]()
    empty, milestone_data = Jsonb({}), {m: Jsonb({"milestone": m}) for m in MILESTONES}
    population = range(1, user_count + 1)
    vote_id = notification_id = 0
    task = progress.add_task("generate votes, watches, notifications", total=len(posts))
    for number, post in enumerate(posts, 1):
        thread = threads[post.thread_index]
        total = post.upvotes + post.downvotes
        if total:
            voters = [u for u in rng.sample(population, total + 1) if u != post.author_id][:total]
            age = (now - post.created_at).total_seconds()
            for position, voter in enumerate(voters):
                vote_id += 1
                at = post.created_at + timedelta(seconds=age * rng.random() ** 4)
                value = 1 if position < post.upvotes else -1
                votes.append((vote_id, voter, post.id, value, at, at))
            up = UPVOTE_QUESTION if post.is_question else UPVOTE_ANSWER
            reputation[post.author_id] += post.upvotes * up + post.downvotes * DOWNVOTE
            for milestone in MILESTONES:
                if post.score >= milestone:
                    notification_id += 1
                    at = post.created_at + timedelta(seconds=age * rng.random() ** 2)
                    notifications.append(
                        _notification(notification_id, post.author_id, "vote_milestone", None,
                                      post, milestone_data[milestone], at, now, rng)
                    )  # fmt: skip
        if not post.is_question and post.visibility == "visible":
            if post.author_id != thread.author_id:
                notification_id += 1
                notifications.append(
                    _notification(notification_id, thread.author_id, "answer", post.author_id,
                                  post, empty, post.created_at, now, rng)
                )  # fmt: skip
            watches.append((post.author_id, thread.id, post.created_at))
        elif post.is_question:
            watches.append((post.author_id, thread.id, post.created_at))
        if thread.accepted is post and post.author_id != thread.author_id:
            reputation[post.author_id] += ACCEPTED
            reputation[thread.author_id] += ACCEPTER
            notification_id += 1
            notifications.append(
                _notification(notification_id, post.author_id, "accepted", thread.author_id,
                              post, empty, post.created_at, now, rng)
            )  # fmt: skip
        if number % 5000 == 0:
            progress.advance(task, 5000)
    progress.update(task, completed=len(posts))
    # One watch per person and thread (answering twice does not watch twice).
    seen: set[tuple[int, int]] = set()
    unique_watches = []
    for user_id, thread_id, at in watches:
        if (user_id, thread_id) not in seen:
            seen.add((user_id, thread_id))
            unique_watches.append((user_id, thread_id, at))

    users = []
    for user_id in user_ids:
        first = FIRST_NAMES[user_id % len(FIRST_NAMES)]
        last = LAST_NAMES[(user_id // len(FIRST_NAMES)) % len(LAST_NAMES)]
        username = f"{first}{last}{user_id}".lower()
        joined = start - timedelta(days=rng.uniform(0, 700))
        points = reputation[user_id]
        trust = 0 if points < 50 else 1 if points < 500 else 2 if points < 2000 else 3
        users.append(
            (user_id, username, username, f"{username}@example.com", f"{username}@example.com",
             f"{first} {last}", password_hash, roles[user_id], trust, points, joined,
             now - timedelta(hours=rng.expovariate(1 / 200)), joined)
        )  # fmt: skip
    tags = [
        (number, 1, name, tag_thread_counts[number - 1]) for number, name in enumerate(names, 1)
    ]
    visible = [thread for thread in threads if thread.visibility == "visible"]
    return Generated(
        users=users,
        tags=tags,
        threads=threads,
        posts=posts,
        votes=votes,
        watches=unique_watches,
        notifications=notifications,
        thread_tags=thread_tags,
        forum_post_count=sum(1 + thread.reply_count for thread in visible),
        forum_last_activity=max((t.last_activity_at for t in visible if t.last_activity_at),
                                default=None),
    )  # fmt: skip


def _notification(
    notification_id: int,
    user_id: int,
    kind: str,
    actor_id: int | None,
    post: PostRow,
    data: Jsonb,
    at: datetime,
    now: datetime,
    rng: random.Random,
) -> tuple[Any, ...]:
    """Old notifications were read (and e-mailed); the last few days' are partly unread."""
    recent = now - at < timedelta(days=3)
    read_at = None if recent and rng.random() < 0.6 else at + timedelta(hours=rng.uniform(0, 48))
    if read_at is not None and read_at > now:
        read_at = now
    return (notification_id, user_id, kind, actor_id, post.thread_index + 1, post.id, data, at,
            read_at, at + timedelta(minutes=1))  # fmt: skip


# --- writing it ------------------------------------------------------------------------------


def _adapt(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict | list):
        return Jsonb(value)
    return value


def _defaults_for(
    conn: psycopg.Connection[Any], table: str, explicit: Sequence[str]
) -> tuple[list[str], tuple[Any, ...]]:
    """Columns the generator does not set but that need a value: the model's Python-side
    default (what the ORM would have written). Columns with a server default or NULL are left
    out of the COPY, so columns added to the schema later do not break the benchmark."""
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    ).fetchall()
    in_database = {row[0] for row in rows}
    unknown = [name for name in explicit if name not in in_database]
    if unknown:
        raise RuntimeError(f"{table} has no column {', '.join(unknown)}: update bench_qa.py")
    model = Base.metadata.tables.get(table)
    names: list[str] = []
    values: list[Any] = []
    for column in model.columns if model is not None else ():
        if column.name in explicit or column.name not in in_database or column.default is None:
            continue
        default: Any = column.default
        if default.is_scalar:
            value = default.arg
        elif default.is_callable:
            value = default.arg(None)
        else:
            continue
        names.append(column.name)
        values.append(_adapt(value))
    return names, tuple(values)


def copy_rows(
    conn: psycopg.Connection[Any],
    progress: Progress,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    extra_names, extra_values = _defaults_for(conn, table, columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, [*columns, *extra_names]))
    )
    task = progress.add_task(f"copy {table}", total=len(rows))
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for number, row in enumerate(rows, 1):
            copy.write_row(row + extra_values if extra_values else row)
            if number % 5000 == 0:
                progress.advance(task, 5000)
    progress.update(task, completed=len(rows))


@dataclass(frozen=True)
class SeedSummary:
    seconds: dict[str, float]
    counts: dict[str, int]
    size_bytes: int


def seed(database: PostgresDatabase, options: Options) -> SeedSummary:
    timings: dict[str, float] = {}
    began = time.perf_counter()
    migrate.upgrade(database.sqlalchemy_url)
    timings["migrate"] = time.perf_counter() - began
    now = utcnow().replace(microsecond=0)
    hasher = Passwords(_settings(database, Path(tempfile.gettempdir())))
    password_hash = hasher.hash(BENCH_PASSWORD)
    with _progress() as progress:
        step = time.perf_counter()
        corpus = Corpus.build(random.Random(options.seed))
        data = generate(options, corpus, password_hash, now, progress)
        timings["generate"] = time.perf_counter() - step

        step = time.perf_counter()
        with psycopg.connect(database.libpq_url) as conn:
            # Rows arrive in one pass with every key already consistent, so skip the foreign
            # key triggers (threads.accepted_post_id and posts.thread_id point at each other).
            conn.execute("SET session_replication_role = replica")
            conn.execute("SET synchronous_commit = off")
            _copy_all(conn, progress, data, corpus, now)
            for table in ("users", "brands", "forums", "tags", "threads", "posts", "votes",
                          "notifications"):  # fmt: skip
                conn.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({}, 'id'),"
                        " (SELECT coalesce(max(id), 0) + 1 FROM {}), false)"
                    ).format(sql.Literal(table), sql.Identifier(table))
                )
            conn.commit()
        timings["copy"] = time.perf_counter() - step

        step = time.perf_counter()
        task = progress.add_task("vacuum analyze", total=None)
        with psycopg.connect(database.libpq_url, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE)")
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        progress.update(task, total=1, completed=1)
        timings["vacuum analyze"] = time.perf_counter() - step
    timings["total"] = time.perf_counter() - began
    counts = {
        "users": len(data.users),
        "threads": len(data.threads),
        "posts": len(data.posts),
        "votes": len(data.votes),
        "tags": len(data.tags),
        "thread tags": len(data.thread_tags),
        "watches": len(data.watches),
        "notifications": len(data.notifications),
        "solved threads": sum(1 for t in data.threads if t.accepted is not None),
    }
    return SeedSummary(seconds=timings, counts=counts, size_bytes=size[0] if size else 0)


def _copy_all(
    conn: psycopg.Connection[Any],
    progress: Progress,
    data: Generated,
    corpus: Corpus,
    now: datetime,
) -> None:
    brand_created = now - timedelta(days=365 * YEARS + 30)
    copy_rows(
        conn, progress, "users",
        ("id", "username", "username_key", "email", "email_key", "display_name",
         "password_hash", "role", "trust_level", "reputation", "created_at", "last_seen_at",
         "password_changed_at"),
        data.users,
    )  # fmt: skip
    copy_rows(
        conn, progress, "brands",
        ("id", "slug", "name", "description", "theme", "default_locale", "created_at"),
        [(1, "acme", "Acme", "Help with Acme phones, plans and home internet.",
          Jsonb({"accent": "#0b5cad"}), "en", brand_created)],
    )  # fmt: skip
    visible_threads = sum(1 for thread in data.threads if thread.visibility == "visible")
    copy_rows(
        conn, progress, "forums",
        ("id", "brand_id", "slug", "name", "description", "position", "moderation_policy",
         "thread_count", "post_count", "last_activity_at", "created_at"),
        [(1, 1, "mobile", "Mobile & plans", "Coverage, data, roaming, eSIM and plans.", 0,
          "open", visible_threads, data.forum_post_count, data.forum_last_activity,
          brand_created)],
    )  # fmt: skip
    copy_rows(conn, progress, "tags", ("id", "brand_id", "name", "thread_count"), data.tags)
    copy_rows(
        conn, progress, "threads",
        ("id", "forum_id", "author_id", "title", "kind", "status", "visibility", "locale",
         "accepted_post_id", "accepted_by_id", "view_count", "score", "reply_count",
         "helpful_count", "last_activity_at", "first_response_at", "created_at", "updated_at"),
        [(t.id, 1, t.author_id, t.title, t.kind, t.status, t.visibility, "en",
          t.accepted.id if t.accepted else None, t.author_id if t.accepted else None,
          t.view_count, t.score, t.reply_count, 0, t.last_activity_at, t.first_response_at,
          t.created_at, t.created_at) for t in data.threads],
    )  # fmt: skip
    copy_rows(conn, progress, "thread_tags", ("thread_id", "tag_id"), data.thread_tags)
    post_rows = []
    for post in data.posts:
        source, html = (corpus.questions if post.is_question else corpus.answers)[post.body]
        deleted_at = post.created_at + timedelta(hours=1) if post.visibility == "deleted" else None
        post_rows.append(
            (post.id, post.thread_index + 1, post.author_id, post.is_question, source, html,
             HTML_VERSION, post.score, post.upvotes, post.downvotes, 0, post.visibility,
             post.is_official, 0, deleted_at, post.created_at, post.created_at)
        )  # fmt: skip
    copy_rows(
        conn, progress, "posts",
        ("id", "thread_id", "author_id", "is_question", "body_source", "body_html",
         "html_version", "score", "upvotes", "downvotes", "helpful_count", "visibility",
         "is_official", "edit_count", "deleted_at", "created_at", "updated_at"),
        post_rows,
    )  # fmt: skip
    copy_rows(
        conn, progress, "votes",
        ("id", "user_id", "post_id", "value", "created_at", "updated_at"),
        data.votes,
    )  # fmt: skip
    copy_rows(
        conn, progress, "thread_watches", ("user_id", "thread_id", "created_at"), data.watches
    )
    copy_rows(
        conn, progress, "notifications",
        ("id", "user_id", "kind", "actor_id", "thread_id", "post_id", "data", "created_at",
         "read_at", "emailed_at"),
        data.notifications,
    )  # fmt: skip


def _progress(*, auto_refresh: bool = True) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        auto_refresh=auto_refresh,
    )


def _settings(database: PostgresDatabase, instance_dir: Path) -> Settings:
    return bench_settings(
        database.sqlalchemy_url,
        instance_dir,
        # Nothing timed here talks to Meilisearch; a URL keeps the app from starting its own.
        meili_url="http://127.0.0.1:9",
        timing_requests=True,
    )


# --- measuring -------------------------------------------------------------------------------


class SqlMeter(common.SqlMeter):
    """Statements and their database time, and the round trips to PostgreSQL.

    Round trips add what the statements do not show: the pool's pre-ping on every checkout
    and the BEGIN and COMMIT/ROLLBACK psycopg sends around each transaction."""

    def __init__(self, engine: Engine) -> None:
        self.round_trips = 0
        self.captured: list[tuple[str, Any]] | None = None
        self._pre_ping = bool(getattr(engine.pool, "_pre_ping", False))
        super().__init__(engine)
        event.listen(engine, "checkout", self._checkout)
        for name in ("begin", "commit", "rollback"):
            event.listen(engine, name, self._transaction)

    def _checkout(self, *_args: Any) -> None:
        self.round_trips += self._pre_ping

    def _transaction(self, *_args: Any) -> None:
        self.round_trips += 1

    def _before(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, ctx: Any, many: bool
    ) -> None:
        super()._before(conn, cursor, statement, parameters, ctx, many)
        self.round_trips += 1
        if self.captured is not None:
            self.captured.append((statement, parameters))


@dataclass
class Result:
    name: str
    server_ms: list[float] = field(default_factory=list)
    client_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    db_ms: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    round_trips: list[int] = field(default_factory=list)


@dataclass
class Bench:
    client: TestClient
    timer: ServerTimer
    meter: SqlMeter
    warmup: int
    explain_with: Engine | None = None
    results: list[Result] = field(default_factory=list)

    def run(self, name: str, count: int, request: Callable[[int], Response]) -> None:
        result = Result(name)
        # No refresh thread while timing: the bar is redrawn between requests instead, so it
        # never competes with the app for the GIL inside a measured request.
        with _progress(auto_refresh=False) as progress:
            task = progress.add_task(name, total=self.warmup + count)
            for number in range(self.warmup + count):
                statements, seconds = self.meter.statements, self.meter.seconds
                round_trips = self.meter.round_trips
                cpu, started = time.process_time(), time.perf_counter()
                response = request(number)
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                _expect_ok(name, response)
                if number >= self.warmup:
                    result.client_ms.append(elapsed * 1000)
                    result.cpu_ms.append(cpu * 1000)
                    result.server_ms.append(self.timer.last * 1000)
                    result.db_ms.append((self.meter.seconds - seconds) * 1000)
                    result.statements.append(self.meter.statements - statements)
                    result.round_trips.append(self.meter.round_trips - round_trips)
                progress.advance(task)
                if number % 20 == 0:
                    progress.refresh()
        self.results.append(result)
        if self.explain_with is not None:
            self.meter.captured = []
            _expect_ok(name, request(self.warmup + count))
            captured, self.meter.captured = self.meter.captured, None
            explain(self.explain_with, name, captured)


def _expect_ok(name: str, response: Response) -> None:
    if response.status_code != 200:
        raise RuntimeError(
            f"{name}: {response.request.method} {response.request.url} answered "
            f"{response.status_code}: {response.text[:300]}"
        )


def _csrf(response: Response) -> str:
    match = CSRF_META.search(response.text)
    if match is None:
        raise RuntimeError(f"no CSRF token on {response.request.url} ({response.status_code})")
    return match.group(1)


@dataclass(frozen=True)
class Fixture:
    forum_url: str
    deep_cursor: str
    deep_row: int
    thread_ids: list[int]
    voter_login: str
    voter_id: int
    vote_posts: list[int]
    voter_votes: dict[int, int]


def load_fixture(engine: Engine, options: Options, rng: random.Random) -> Fixture:
    """What to request, chosen from the database (so --reuse needs nothing else)."""
    wanted = options.warmup + options.requests + 1
    with Session(engine) as db:
        forum = db.scalars(select(Forum).order_by(Forum.thread_count.desc()).limit(1)).one()
        brand = db.get(Brand, forum.brand_id)
        assert brand is not None
        listing = select(Thread).where(
            Thread.forum_id == forum.id, Thread.visibility == Visibility.VISIBLE
        )
        deep_row = max(1, min(DEEP_ROW, int(forum.thread_count * 0.75)))
        deep = db.scalars(
            listing.order_by(Thread.last_activity_at.desc(), Thread.id.desc())
            .offset(deep_row - 1)
            .limit(1)
        ).one()
        visible_ids = list(
            db.scalars(
                select(Thread.id).where(
                    Thread.forum_id == forum.id, Thread.visibility == Visibility.VISIBLE
                )
            )
        )
        members = select(User).where(User.role == Role.MEMBER, User.deactivated_at.is_(None))
        member_count = db.scalar(select(func.count()).select_from(members.subquery())) or 1
        voter = db.scalars(
            members.order_by(User.reputation.desc(), User.id).offset(min(100, member_count // 2))
        ).first()
        if voter is None:
            raise RuntimeError("the database has no member to vote with")
        vote_posts = list(
            db.scalars(
                select(Post.id)
                .join(Thread, Thread.id == Post.thread_id)
                .where(
                    Post.author_id != voter.id,
                    Post.visibility == Visibility.VISIBLE,
                    Thread.visibility == Visibility.VISIBLE,
                    Thread.locked_at.is_(None),
                )
                .order_by(func.random())
                .limit(wanted)
            )
        )
        rows = db.execute(select(Vote.post_id, Vote.value).where(Vote.user_id == voter.id))
        voter_votes = dict(rows.all())
        return Fixture(
            forum_url=f"/b/{brand.slug}/{forum.slug}",
            deep_cursor=encode_cursor("activity", deep),
            deep_row=deep_row,
            thread_ids=[rng.choice(visible_ids) for _ in range(wanted)],
            voter_login=voter.username,
            voter_id=voter.id,
            vote_posts=vote_posts,
            voter_votes=voter_votes,
        )


@dataclass
class Measurement:
    results: list[Result]
    busy_cpus: float | None  # CPUs the whole machine kept busy on average while timing
    own_cpus: float  # of which this process (the app and the test client)
    calibration_ms: tuple[float, float]  # calibrate() before and after timing


def measure(database: PostgresDatabase, options: Options) -> Measurement:
    rng = random.Random(options.seed + 1)
    calibration_before = calibrate()
    counters_before, cpu_before, wall_before = cpu_counters(), time.process_time(), time.time()
    with workspace("bench_qa_") as instance_dir:
        settings = _settings(database, instance_dir)
        engine = make_engine(settings.sqlalchemy_url)
        fixture = load_fixture(engine, options, rng)
        meter = SqlMeter(engine)
        timer = ServerTimer(create_app(settings, engine=engine))
        with TestClient(timer, base_url="http://testserver") as client:
            bench = Bench(
                client=client,
                timer=timer,
                meter=meter,
                warmup=options.warmup,
                explain_with=engine if options.explain else None,
            )
            _run_all(bench, fixture, options, rng)
        wall = time.time() - wall_before
        own = (time.process_time() - cpu_before) / wall
        busy = busy_cpus(counters_before, cpu_counters())
        return Measurement(bench.results, busy, own, (calibration_before, calibrate()))


def _run_all(bench: Bench, fixture: Fixture, options: Options, rng: random.Random) -> None:
    client = bench.client
    threads = fixture.thread_ids
    # Anonymous visitors first (they carry the session cookie the site gave them).
    bench.run("thread page (anonymous)", options.requests, lambda n: client.get(f"/t/{threads[n]}"))
    bench.run("forum page 1", options.forum_requests, lambda _n: client.get(fixture.forum_url))
    bench.run(
        f"forum page {fixture.deep_row // PAGE_SIZE + 1:,} (row {fixture.deep_row + 1:,}-)",
        options.forum_requests,
        lambda _n: client.get(fixture.forum_url, params={"cursor": fixture.deep_cursor}),
    )

    # Then a signed-in member.
    token = _csrf(client.get("/login"))
    response = client.post(
        "/login",
        data={"login": fixture.voter_login, "password": BENCH_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    if response.status_code != 303:
        raise RuntimeError(f"login failed ({response.status_code}): {response.text[:300]}")
    token = _csrf(client.get(f"/t/{threads[0]}"))
    shuffled = threads[:]
    rng.shuffle(shuffled)
    bench.run("thread page (member)", options.requests, lambda n: client.get(f"/t/{shuffled[n]}"))

    current = dict(fixture.voter_votes)
    headers = {"HX-Request": "true", "X-CSRF-Token": token}

    def vote(number: int) -> Response:
        # A different post each time and a value that differs from the current one, so every
        # request really writes: up (sometimes down) where there is no vote, retract otherwise.
        post_id = fixture.vote_posts[number % len(fixture.vote_posts)]
        value = 0 if current.get(post_id, 0) else 1 if rng.random() < 0.85 else -1
        current[post_id] = value
        return client.post(f"/posts/{post_id}/vote", data={"value": str(value)}, headers=headers)

    bench.run("vote (htmx)", options.requests, vote)


def explain(engine: Engine, name: str, captured: list[tuple[str, Any]]) -> None:
    """EXPLAIN ANALYZE the SELECTs one more request of an endpoint ran, in a transaction that
    is rolled back (writes are listed, not run again)."""
    console.rule(f"[bold]{name}: {len(captured)} statements")
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        for number, (statement, parameters) in enumerate(captured, 1):
            one_line = " ".join(statement.split())
            if not one_line.upper().startswith("SELECT"):
                console.print(f"[dim]{number:>2}. (not explained) {one_line[:150]}[/dim]")
                continue
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            plan = [row[0] for row in cursor.fetchall()]
            execution = next((line for line in plan if line.startswith("Execution")), "")
            console.print(f"[bold]{number:>2}.[/bold] {one_line[:300]}", highlight=False)
            console.print(f"    [cyan]{execution}[/cyan]")
            for line in plan:
                if not line.startswith(("Planning", "Execution")):
                    console.print(f"      {line}", markup=False, highlight=False)
        raw.rollback()
    finally:
        raw.close()


# --- reporting -------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:.1f}"


def _count(counts: list[int]) -> str:
    """Median, and the range when requests differ: '7' or '13 (12-17)'."""
    typical = int(statistics.median(counts))
    low, high = min(counts), max(counts)
    return f"{typical} ({low}-{high})" if low != high else str(typical)


def report(measurement: Measurement) -> None:
    results = measurement.results
    table = Table(title="Server time per request, ms (warm-up excluded)")
    table.add_column("endpoint")
    table.add_column("n", justify="right")
    for heading in ("median", "p90", "p99", "max"):
        table.add_column(heading, justify="right")
    table.add_column("DB", justify="right")
    table.add_column("CPU", justify="right")
    table.add_column("client median/p99", justify="right")
    table.add_column("SQL", justify="right")
    table.add_column("round trips", justify="right")
    for result in results:
        server = result.server_ms
        table.add_row(
            result.name,
            str(len(server)),
            _ms(statistics.median(server)),
            _ms(percentile(server, 90)),
            _ms(percentile(server, 99)),
            _ms(max(server)),
            _ms(statistics.median(result.db_ms)),
            _ms(statistics.median(result.cpu_ms)),
            f"{_ms(statistics.median(result.client_ms))} / {_ms(percentile(result.client_ms, 99))}",
            _count(result.statements),
            _count(result.round_trips),
        )
    console.print(table)
    console.print(
        "[dim]server = time inside the ASGI app (an outermost wrapper, from the request "
        "arriving to the last response byte); DB = median time inside cursor.execute; CPU = "
        "median CPU time of this process (app and test client, not PostgreSQL); client = "
        "perf_counter around the TestClient call (adds httpx and the test client's thread hop); "
        "SQL = statements per request (before_cursor_execute listener); round trips = those "
        "plus the pool's pre-ping per connection checkout and BEGIN/COMMIT/ROLLBACK; counts are "
        "median (min-max). Percentiles are nearest-rank.[/dim]"
    )
    before, after = measurement.calibration_ms
    console.print(
        f"Machine speed check (a fixed Python loop, lower is faster): {before:.0f} ms before "
        f"timing, {after:.0f} ms after; compare runs only when these are similar."
    )
    if measurement.busy_cpus is not None:
        others = measurement.busy_cpus - measurement.own_cpus
        console.print(
            f"While timing, the machine kept {measurement.busy_cpus:.2f} of "
            f"{os.cpu_count()} CPUs busy: {measurement.own_cpus:.2f} this process, "
            f"{others:.2f} PostgreSQL and everything else."
            + (
                " [yellow]Other processes competed for the CPU: expect inflated p90/p99; "
                "run again on a quiet machine.[/yellow]"
                if others > 0.75
                else ""
            )
        )
    for result in results:
        if result.name.startswith("thread page"):
            p99 = percentile(result.server_ms, 99)
            met = p99 < THREAD_P99_TARGET_MS
            verdict = "[green]met[/green]" if met else "[red]NOT met[/red]"
            console.print(
                f"Target thread page p99 < {THREAD_P99_TARGET_MS:.0f} ms, {result.name}: "
                f"{p99:.1f} ms: {verdict}"
            )


def report_seed(summary: SeedSummary) -> None:
    counts = ", ".join(f"{value:,} {name}" for name, value in summary.counts.items())
    console.print(f"Seeded {counts}.")
    steps = ", ".join(f"{name} {value:.1f} s" for name, value in summary.seconds.items())
    console.print(
        f"[bold]Seeding took {summary.seconds['total']:.1f} s[/bold] ({steps}); "
        f"database size {summary.size_bytes / 2**20:,.0f} MiB."
    )


# --- main ------------------------------------------------------------------------------------


@contextmanager
def throwaway(options: Options) -> Iterator[PostgresDatabase]:
    if options.reuse:
        yield PostgresDatabase(name=options.reuse, admin=make_url(options.database_url))
        return
    with throwaway_postgres(
        options.database_url,
        "bench_qa",
        keep=options.keep,
        kept_hint="time it again: bench/bench_qa.py --reuse {name}",
    ) as database:
        yield database


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    exit_cleanly_on_signals()
    with throwaway(options) as database:
        if options.reuse:
            migrate.upgrade(database.sqlalchemy_url)  # a kept database follows the code's schema
        else:
            console.print(
                f"Seeding {options.threads:,} threads, about "
                f"{round(options.threads * options.posts_per_thread):,} posts and "
                f"{options.users:,} users..."
            )
            report_seed(seed(database, options))
        if options.seed_only:
            return 0
        console.print(f"Timing the code at {code_version()}.")
        report(measure(database, options))
    return 0


if __name__ == "__main__":
    run_main(main)
