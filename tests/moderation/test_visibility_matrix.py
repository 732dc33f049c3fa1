"""The visibility matrix: pending, hidden, deleted and suspended members' content never reaches
people who may not see it, on any surface that lists, shows, counts or finds content, and
staff see it marked as such.

One world is built per database through the real services (a held first post, a moderator's
hide, flags reaching the hide weight, an author's delete, a moderator's delete, a suspension)
and indexed by the real worker into the real Meilisearch twice: while everything was visible
and after it left, so search has to *drop* content, not merely never receive it. Then every
surface is read by every role, one subtest per (surface, role, state) cell; a cell reports all
its problems at once.

The rules:
- members, the content's own author and anonymous visitors see none of it: not the title, not
  the body, no entry in any list, and it is not counted;
- except that the author of content held for a moderator may open it (its thread page, its
  answer in the thread, the JSON of both, its history), marked "Waiting for a moderator", and
  cannot edit it; it is still in no list, search, profile or notification, even theirs;
- staff (agents, moderators, admins) may see it, marked: a "Pending approval", "Hidden" or
  "Deleted" badge on pages, a "visibility" field in JSON. Surfaces that have no way to mark
  content (search, profiles, notifications) must not show it to anyone;
- counters (forum threads and posts, tags, answers, profile and notification counts) count
  visible content only, whoever looks.

Below the matrix: held posts notify, list and count only once approved; a suspended member's
content stays hidden until the suspension is lifted or runs out; notification e-mails (at once
or in the daily digest) leave out content removed before they are sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from fastapi.testclient import TestClient
from httpx2 import Response  # what Starlette's TestClient returns
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community import thread_editing, threads, visibility, voting
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.models import (
    EmailPreference,
    Forum,
    Notification,
    NotificationKind,
    Post,
    Role,
    Thread,
    User,
    Visibility,
)
from community.core.schemas import EditIn
from community.core.settings import Settings
from community.worker import Worker
from crowdservice.followup import service as followup
from moderation import accounts, actions, decisions, queue
from moderation.models import FlagReason, QueueItem
from tests.conftest import QA, Inbox, announce_published, drain, fresh, log_in

UserFactory = Callable[..., User]
RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]

ROLES = ["anonymous", "member", "author", "agent", "moderator", "admin"]
STAFF = {"agent", "moderator", "admin"}
STATES = ["pending", "hidden", "deleted", "suspended"]
# How each state is stored (a suspended member's posts are hidden while it lasts).
STORED = {
    "pending": Visibility.PENDING,
    "hidden": Visibility.HIDDEN,
    "deleted": Visibility.DELETED,
    "suspended": Visibility.HIDDEN,
}
# What authors see on their own held content.
WAITING = '<span class="badge warn">Waiting for a moderator</span>'
# The badge staff see (community/core/labels.py).
BADGE = {
    "pending": "Pending approval",
    "hidden": "Hidden",
    "deleted": "Deleted",
    "suspended": "Hidden",
}
SORTS = ["activity", "newest", "unanswered", "top", "solved"]


@dataclass(frozen=True)
class Words:
    """Distinctive words, each in exactly one piece of content."""

    title: str  # the state's question title
    body: str  # the state's question body
    answer: str  # the state's answer in the visible host thread
    reply: str  # someone else's visible, accepted answer inside the state's own thread


WORDS = {
    "visible": Words("capybara", "chinchilla", "wallaby", "koala"),
    "pending": Words("pangolin", "tapir", "okapi", "unused"),
    "hidden": Words("marmoset", "gibbon", "dugong", "jerboa"),
    "deleted": Words("axolotl", "quetzal", "tamarin", "meerkat"),
    "suspended": Words("narwhal", "caracal", "manatee", "ocelot"),
}


# Written in the host thread's private follow-up (crowdservice.followup): no surface the matrix
# reads, for any role, may show them (the conversation has its own page, for the customer and
# staff only).
PRIVATE_WORDS = ["wolverine", "quokka"]


def secret_words(state: str) -> list[str]:
    words = WORDS[state]
    # A held question takes no answers, so the pending thread has no reply.
    return [words.title, words.body, words.answer] + ([] if state == "pending" else [words.reply])


def title_for(word: str) -> str:
    return f"Trouble with the {word} setting after the update"


@dataclass
class Content:
    """One state's content: a question (its own thread) and an answer in the host thread."""

    state: str
    author: str
    thread_id: int
    question_id: int
    answer_id: int
    reply_id: int | None
    tag: str


@dataclass(frozen=True)
class Viewer:
    client: TestClient
    user: User | None
    signed_in: bool


@dataclass
class World:
    forum_id: int
    host_id: int
    control: Content  # visible content written the same way: proves the checks can see
    content: dict[str, Content]
    users: dict[str, User]
    viewers: dict[str, dict[str, Viewer]]  # role -> state -> who looks

    def non_visible_posts(self) -> set[int]:
        return {i for item in self.content.values() for i in (item.question_id, item.answer_id)}

    def non_visible_threads(self) -> set[int]:
        return {item.thread_id for item in self.content.values()}


# --- building the world through the real services ---------------------------------------------


def build_world(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    as_role: RoleClient,
    worker: Worker,
) -> World:
    # Solved threads become community solutions at once, so the KB surfaces have something
    # to lose when a solved thread is hidden.
    forum.brand.solution_threshold = 10.0
    db.commit()

    moderator = make_user("warden", role=Role.MODERATOR)
    asker, writer, helper = make_user("asker"), make_user("writer"), make_user("helper")
    suspendee = make_user("suspendee")
    newbie = make_user("newbie", trust_level=0)
    flaggers = [make_user(f"flagger{index}") for index in range(3)]

    anonymous = Viewer(make_client(), None, signed_in=False)
    viewers: dict[str, dict[str, Viewer]] = {"anonymous": dict.fromkeys(STATES, anonymous)}
    role_users = []
    for role in ("member", "agent", "moderator", "admin"):
        role_client, role_user = as_role(Role(role))
        assert role_user is not None
        role_users.append(role_user)
        viewers[role] = dict.fromkeys(STATES, Viewer(role_client, role_user, signed_in=True))
    authors = {}
    for author in (writer, newbie, suspendee):
        author_client = make_client()
        log_in(author_client, author.username)
        authors[author.username] = Viewer(author_client, author, signed_in=True)
    viewers["author"] = {
        "pending": authors["newbie"],
        "hidden": authors["writer"],
        "deleted": authors["writer"],
        # Signed in before the suspension, which ends the session: what a suspended author's
        # browser sees afterwards.
        "suspended": Viewer(authors["suspendee"].client, suspendee, signed_in=False),
    }

    # Every post mentions everyone who looks, and the role accounts watch the host thread, so
    # each post notifies each of them while (and only while) it is visible.
    mentions = " ".join(f"@{user.username}" for user in [*role_users, writer, newbie, suspendee])
    host = qa.ask(
        asker,
        title="Hedgehog hub keeps rebooting overnight",
        body="Since Tuesday the hub restarts at night.",
        tags=["router"],
    )
    for role_user in role_users:
        threads.watch(db, role_user, host)
    db.commit()
    conversation = followup.open_followup(
        db, moderator, host, f"Please send the {PRIVATE_WORDS[0]} serial number here."
    )
    followup.reply(db, asker, conversation, f"It is {PRIVATE_WORDS[1]}-4471.")
    db.commit()

    def make(state: str, author: User) -> Content:
        words = WORDS[state]
        tag = f"tag-{state}"
        thread = qa.ask(
            author,
            title=title_for(words.title),
            body=f"The {words.body} option vanished. {mentions}",
            tags=["router", tag],
        )
        reply_id = None
        if thread.visibility == Visibility.VISIBLE:
            reply = qa.answer(helper, thread, f"Reset the {words.reply} toggle first.")
            voting.accept(db, author, reply.id)
            db.commit()
            reply_id = reply.id
        answer = qa.answer(author, host, f"Same here: the {words.answer} trick helped. {mentions}")
        if answer.visibility == Visibility.VISIBLE:
            # Edited once, so the answer has a revision history showing its text.
            thread_editing.edit_post(
                db,
                author,
                answer,
                EditIn(body=f"Same here: the {words.answer} trick helped twice. {mentions}"),
            )
            db.commit()
        return Content(
            state=state,
            author=author.username,
            thread_id=thread.id,
            question_id=visibility.question_of(db, thread).id,
            answer_id=answer.id,
            reply_id=reply_id,
            tag=tag,
        )

    control = make("visible", writer)
    content = {
        "pending": make("pending", newbie),
        "hidden": make("hidden", writer),
        "deleted": make("deleted", writer),
        "suspended": make("suspended", suspendee),
    }
    db.commit()
    # Indexed while visible (the solved threads become KB solutions), so the checks see
    # content leave the index.
    drain(worker)
    fresh(db)
    # The searches the matrix makes do find this content while it is visible, so not finding
    # it later means it left the index.
    for state in ("hidden", "deleted", "suspended"):
        words, url = WORDS[state], f"/t/{content[state].thread_id}"
        for query, wanted in (
            (f"scope=community&q={words.title}", url),
            (f"scope=community&q={words.answer}", f"/t/{host.id}"),
            ("scope=kb&type=solution&per_page=50", url),
        ):
            result = anonymous.client.get(f"/api/v1/brands/acme/search?{query}").json()
            urls = [hit["url"] for hit in result["hits"]]
            assert wanted in urls, f"setup: {state} content not indexed ({query}: {urls})"

    def question_post(item: Content) -> Post:
        thread = db.get(Thread, item.thread_id)
        assert thread is not None
        return visibility.question_of(db, thread)

    def answer_post(item: Content) -> Post:
        post = db.get(Post, item.answer_id)
        assert post is not None
        return post

    hidden, deleted = content["hidden"], content["deleted"]
    actions.set_post_visibility(
        db, moderator, question_post(hidden), Visibility.HIDDEN, reason="off-topic rant"
    )
    for flagger in flaggers:  # three trust-level-1 flags reach the brand's hide weight (3)
        queue.flag(db, flagger, answer_post(hidden), FlagReason.OFFENSIVE)
    thread_editing.delete_post(db, writer, answer_post(deleted))
    actions.set_post_visibility(
        db, moderator, question_post(deleted), Visibility.DELETED, reason="duplicate"
    )
    accounts.suspend(db, moderator, suspendee, days=7, reason="abusive messages")
    db.commit()
    drain(worker)
    fresh(db)

    for state, item in content.items():
        stored = (question_post(item).thread.visibility, answer_post(item).visibility)
        assert stored == (STORED[state], STORED[state]), f"setup: {state} content is {stored}"
    fresh(db)
    return World(
        forum_id=forum.id,
        host_id=host.id,
        control=control,
        content=content,
        users={user.username: user for user in (writer, helper, suspendee, newbie)},
        viewers=viewers,
    )


# --- one cell of the matrix --------------------------------------------------------------------


@dataclass
class Cell:
    """One (role, state) pair on one group of surfaces; collects every problem it finds."""

    role: str
    state: str
    viewer: Viewer
    cache: dict[tuple[int, str, bool], Response]
    problems: list[str] = field(default_factory=list)

    @property
    def staff(self) -> bool:
        return self.role in STAFF

    @property
    def own_held(self) -> bool:
        """The author looking at their own held content: shown to them, marked."""
        return self.role == "author" and self.state == "pending"

    @property
    def sees(self) -> bool:
        """May open the content's own pages (thread, answer, history)."""
        return self.staff or self.own_held

    @property
    def marker(self) -> str:
        return WAITING if self.own_held else badge(self.state)

    @property
    def item_words(self) -> list[str]:
        return secret_words(self.state)

    def check(self, ok: bool, surface: str, problem: str) -> None:
        if not ok:
            self.problems.append(f"{surface}: {problem}")

    def get(self, url: str, *, htmx: bool = False) -> Response:
        """Pages are read once per browser: the world does not change while it is read."""
        key = (id(self.viewer.client), url, htmx)
        if key not in self.cache:
            headers = {"HX-Request": "true"} if htmx else {}
            self.cache[key] = self.viewer.client.get(url, headers=headers, follow_redirects=False)
        return self.cache[key]

    def json(self, url: str) -> Any:
        response = self.get(url)
        return response.json() if response.status_code == 200 else {}

    def report(self) -> str:
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        return f"role={self.role}, state={self.state}:\n{lines}"


def found(text: str, words: list[str]) -> list[str]:
    return [word for word in words if word in text]


def thread_rows(html: str) -> list[str]:
    return html.split('<li class="thread-row">')[1:]


def post_sections(html: str) -> dict[int, str]:
    marks = list(re.finditer(r'<section class="card post[^"]*" id="post-(\d+)"', html))
    sections = {}
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(html)
        sections[int(mark.group(1))] = html[mark.start() : end]
    return sections


def badge(state: str) -> str:
    return f'<span class="badge danger">{BADGE[state]}</span>'


def stat(html: str, name: str) -> int | None:
    match = re.search(rf"<dt>{name}</dt><dd><strong>(\d+)</strong>", html)
    return int(match.group(1)) if match else None


def result_links(html: str) -> list[str]:
    return re.findall(r'<h2><a href="([^"]+)">', html)


def suggestion_links(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]+)" target="_blank"', html)


# --- surfaces, one (role, state) cell at a time ------------------------------------------------


def check_thread_lists(cell: Cell, world: World) -> None:
    """The forum page (every sort, whole page and htmx block, tag filter) and its JSON."""
    item = world.content[cell.state]
    title = WORDS[cell.state].title
    for sort in SORTS:
        # The htmx block (what the sort tabs swap in) for the default sort, whole pages for all.
        for htmx in (False, True) if sort == "activity" else (False,):
            surface = f"forum page ?sort={sort}" + (" (htmx)" if htmx else "")
            page = cell.get(f"/b/acme/mobile?sort={sort}", htmx=htmx)
            cell.check(page.status_code == 200, surface, f"status {page.status_code}")
            rows = [row for row in thread_rows(page.text) if title in row]
            if cell.staff:
                if sort == "activity":
                    cell.check(len(rows) == 1, surface, "staff do not see the thread")
                unmarked = [row for row in rows if badge(cell.state) not in row]
                cell.check(not unmarked, surface, f"thread not marked {BADGE[cell.state]!r}")
            else:
                leaked = found(page.text, [title, item.tag])
                cell.check(not leaked, surface, f"shows {leaked}")
            # Tags are offered with visible threads' counts: one no visible thread carries is not.
            cell.check(
                f'<option value="{item.tag}"' not in page.text,
                surface + " tag filter",
                f"offers {item.tag!r}, which only non-visible threads carry",
            )
        url = f"/api/v1/forums/{world.forum_id}/threads?sort={sort}&limit=100"
        surface = f"forum API ?sort={sort}"
        listing = cell.get(url)
        cell.check(listing.status_code == 200, surface, f"status {listing.status_code}")
        entry = next(
            (e for e in cell.json(url).get("items", []) if e["id"] == item.thread_id), None
        )
        if cell.staff:
            if sort == "activity":
                cell.check(entry is not None, surface, "staff do not see the thread")
            cell.check(
                entry is None or entry.get("visibility") == STORED[cell.state].value,
                surface,
                f"visibility field {entry and entry.get('visibility')!r}",
            )
        else:
            cell.check(entry is None, surface, "lists the thread")
            cell.check(title not in listing.text, surface, f"shows {title!r}")

    for htmx in (False, True):
        surface = f"forum page ?tag={item.tag}" + (" (htmx)" if htmx else "")
        page = cell.get(f"/b/acme/mobile?tag={item.tag}", htmx=htmx)
        rows = [row for row in thread_rows(page.text) if title in row]
        if cell.staff:
            marked = len(rows) == 1 and badge(cell.state) in rows[0]
            cell.check(marked, surface, "staff do not see the thread marked")
        else:
            cell.check(not rows and title not in page.text, surface, "lists the thread")
    url = f"/api/v1/forums/{world.forum_id}/threads?tag={item.tag}&limit=100"
    listed = [entry["id"] for entry in cell.json(url).get("items", [])]
    cell.check(
        (item.thread_id in listed) == cell.staff,
        f"forum API ?tag={item.tag}",
        "lists the thread" if item.thread_id in listed else "staff do not see the thread",
    )


def check_thread_pages(cell: Cell, world: World) -> None:
    """The state's own thread: page, htmx block and JSON."""
    item = world.content[cell.state]
    words = WORDS[cell.state]
    shown = [words.title, words.body] + ([words.reply] if item.reply_id else [])
    for htmx in (False, True):
        surface = "thread page /t/{id}" + (" (htmx)" if htmx else "")
        page = cell.get(f"/t/{item.thread_id}", htmx=htmx)
        if not cell.sees:
            cell.check(page.status_code == 404, surface, f"status {page.status_code}")
            leaked = found(page.text, shown)
            cell.check(not leaked, surface, f"shows {leaked}")
            continue
        cell.check(page.status_code == 200, surface, f"status {page.status_code}")
        if htmx:  # the answers block: the reply inside the removed thread
            cell.check(words.reply in page.text or not item.reply_id, surface, "reply missing")
            continue
        header = page.text.split('<section class="card post', 1)[0]
        cell.check(
            words.title in header and cell.marker in header,
            surface,
            "thread title not shown marked",
        )
        question = post_sections(page.text).get(item.question_id, "")
        cell.check(
            words.body in question and cell.marker in question,
            surface,
            "question not shown marked",
        )
        if cell.own_held:
            leaked = [f"/posts/{item.question_id}/edit", "/tags"]
            offered = [link for link in leaked if link in page.text]
            cell.check(not offered, surface, f"offers to change held content: {offered}")
    url = f"/api/v1/threads/{item.thread_id}"
    surface = "thread API /api/v1/threads/{id}"
    detail = cell.get(url)
    if cell.sees:
        body = cell.json(url)
        expected = STORED[cell.state].value
        cell.check(
            body.get("visibility") == expected
            and body.get("question", {}).get("visibility") == expected
            and words.body in body.get("question", {}).get("body_source", ""),
            surface,
            f"status {detail.status_code}, thread visibility {body.get('visibility')!r}, "
            f"question visibility {body.get('question', {}).get('visibility')!r}",
        )
    else:
        cell.check(detail.status_code == 404, surface, f"status {detail.status_code}")
        leaked = found(detail.text, shown)
        cell.check(not leaked, surface, f"shows {leaked}")


def check_answers_in_visible_thread(cell: Cell, world: World) -> None:
    """The state's answer inside the visible host thread: page, htmx block and JSON."""
    item = world.content[cell.state]
    word = WORDS[cell.state].answer
    for htmx in (False, True):
        surface = "host thread page /t/{id}" + (" (htmx)" if htmx else "")
        page = cell.get(f"/t/{world.host_id}", htmx=htmx)
        cell.check(page.status_code == 200, surface, f"status {page.status_code}")
        section = post_sections(page.text).get(item.answer_id)
        if cell.sees:
            cell.check(
                section is not None and word in section and cell.marker in section,
                surface,
                "answer not shown marked",
            )
        else:
            cell.check(section is None and word not in page.text, surface, f"shows {word!r}")
    url = f"/api/v1/threads/{world.host_id}"
    surface = "host thread API /api/v1/threads/{id}"
    answers = {answer["id"]: answer for answer in cell.json(url).get("answers", [])}
    if cell.sees:
        answer = answers.get(item.answer_id, {})
        cell.check(
            answer.get("visibility") == STORED[cell.state].value,
            surface,
            f"answer visibility {answer.get('visibility')!r}",
        )
    else:
        cell.check(item.answer_id not in answers, surface, "lists the answer")
        cell.check(word not in cell.get(url).text, surface, f"shows {word!r}")


def check_post_details(cell: Cell, world: World) -> None:
    """Revision history (page and API) and the edit form of the state's answer and question."""
    item = world.content[cell.state]
    words = WORDS[cell.state]
    for post_id, word, edited in (
        (item.answer_id, words.answer, cell.state != "pending"),
        (item.question_id, words.title, False),
    ):
        for url, surface in (
            (f"/posts/{post_id}/revisions", "revisions page /posts/{id}/revisions"),
            (f"/api/v1/posts/{post_id}/revisions", "revisions API /api/v1/posts/{id}/revisions"),
        ):
            response = cell.get(url)
            if cell.sees:
                cell.check(response.status_code == 200, surface, f"status {response.status_code}")
                if edited:
                    cell.check(word in response.text, surface, "history not shown")
            else:
                cell.check(response.status_code == 404, surface, f"status {response.status_code}")
                cell.check(word not in response.text, surface, f"shows {word!r}")
        if cell.staff:
            continue
        form = cell.get(f"/posts/{post_id}/edit")
        surface = "edit form /posts/{id}/edit"
        expected = 404 if cell.viewer.signed_in else 303  # 303: to the sign-in page
        if cell.own_held:
            expected = 403  # theirs to see, not to change while a moderator reviews it
        cell.check(form.status_code == expected, surface, f"status {form.status_code}")
        leaked = found(form.text, cell.item_words)
        cell.check(not leaked, surface, f"shows {leaked}")


def check_profiles(cell: Cell, world: World) -> None:
    """Every author's profile page and API: non-visible content is neither listed nor counted
    (profiles have no marks, so this holds for staff too)."""
    item = world.content[cell.state]
    for username, user in world.users.items():
        surface = f"profile page /u/{username}"
        page = cell.get(f"/u/{username}")
        cell.check(page.status_code == 200, surface, f"status {page.status_code}")
        leaked = found(page.text, cell.item_words)
        cell.check(not leaked, surface, f"shows {leaked}")
        lists = page.text.split('id="questions-heading"', 1)[-1].split('id="rep-heading"', 1)[0]
        cell.check(f"#post-{item.answer_id}" not in lists, surface, "lists the answer")
        cell.check(f'href="/t/{item.thread_id}"' not in lists, surface, "lists the thread")
        surface = f"user API /api/v1/users/{{id}} ({username})"
        api = cell.get(f"/api/v1/users/{user.id}")
        cell.check(api.status_code == 200, surface, f"status {api.status_code}")
        leaked = found(api.text, cell.item_words)
        cell.check(not leaked, surface, f"shows {leaked}")


def check_notifications(cell: Cell, world: World) -> None:
    """The viewer's notifications (page, API): nothing about the state's content, which they
    were notified of while it was visible (or, held, never were). No marks here, so this holds
    for staff too."""
    item = world.content[cell.state]
    page = cell.get("/notifications")
    api = cell.get("/api/v1/notifications?limit=100")
    if not cell.viewer.signed_in:
        cell.check(page.status_code == 303, "notifications page", f"status {page.status_code}")
        cell.check(api.status_code == 401, "notifications API", f"status {api.status_code}")
        return
    leaked = found(page.text, cell.item_words)
    cell.check(not leaked, "notifications page /notifications", f"shows {leaked}")
    posts = {item.question_id, item.answer_id}
    about = [
        entry
        for entry in cell.json("/api/v1/notifications?limit=100").get("items", [])
        if entry["kind"] != NotificationKind.MODERATION.value  # notices to authors: by design
        and (entry["post_id"] in posts or entry["thread_id"] == item.thread_id)
    ]
    surface = "notifications API /api/v1/notifications"
    cell.check(not about, surface, f"lists {about}")
    leaked = found(api.text, cell.item_words)
    cell.check(not leaked, surface, f"shows {leaked}")


def check_search(cell: Cell, world: World) -> None:
    """Real Meilisearch through the search API, the search page, the site-wide /search
    address, suggestions while asking and the KB home. Results carry no marks, so nobody finds
    non-visible content."""
    item = world.content[cell.state]
    words = WORDS[cell.state]
    url, host_url = f"/t/{item.thread_id}", f"/t/{world.host_id}"

    for query, surface in (
        ("scope=community&forum=mobile&per_page=50", "search API, every thread"),
        ("scope=kb&type=solution&per_page=50", "search API, every KB solution"),
        (f"scope=community&q={words.title}", "search API, q=<title word>"),
    ):
        result = cell.json(f"/api/v1/brands/acme/search?{query}")
        urls = [hit["url"] for hit in result.get("hits", [])]
        cell.check(result.get("degraded") is False, surface, f"not a real search: {result}")
        cell.check(url not in urls, surface, "finds the thread")
        leaked = found(str(result.get("hits")), cell.item_words)
        cell.check(not leaked, surface, f"shows {leaked}")
    # The host thread is visible; the state's answer in it must not make it findable.
    result = cell.json(f"/api/v1/brands/acme/search?scope=community&q={words.answer}")
    urls = [hit["url"] for hit in result.get("hits", [])]
    cell.check(host_url not in urls, "search API, q=<answer word>", "finds the host thread")

    for query in ("scope=community&forum=mobile", "scope=kb&type=solution"):
        surface = f"search page /b/acme/search?{query}"
        page = cell.get(f"/b/acme/search?{query}")
        cell.check(page.status_code == 200, surface, f"status {page.status_code}")
        cell.check("reduced mode" not in page.text, surface, "not a real search")
        cell.check(url not in result_links(page.text), surface, "finds the thread")
        leaked = found(page.text, cell.item_words)
        cell.check(not leaked, surface, f"shows {leaked}")
    # The site-wide address redirects to the brand's search; the page repeats the query, so
    # only the other words may not appear.
    page = cell.viewer.client.get(f"/search?q={words.title}&scope=community")
    surface = "search page /search?q=<title word>"
    cell.check(page.status_code == 200, surface, f"status {page.status_code}")
    cell.check(url not in result_links(page.text), surface, "finds the thread")
    leaked = found(page.text, [w for w in cell.item_words if w != words.title])
    cell.check(not leaked, surface, f"shows {leaked}")

    surface = "ask-form suggestions /b/acme/kb/suggest"
    suggested = cell.get(f"/b/acme/kb/suggest?title={words.title}")
    cell.check(suggested.status_code == 200, surface, f"status {suggested.status_code}")
    cell.check(url not in suggestion_links(suggested.text), surface, "suggests the thread")

    home = cell.get("/b/acme/kb")
    leaked = found(home.text, cell.item_words)
    cell.check(not leaked, "KB home /b/acme/kb", f"shows {leaked}")


def check_moderation_queue(cell: Cell, world: World) -> None:
    """The pending queue: moderators see held posts there (the queue marks them), nobody
    else opens it."""
    held = world.content["pending"]
    page = cell.get("/b/acme/mod/pending")
    api = cell.get("/api/v1/brands/acme/moderation/pending")
    if cell.role in ("moderator", "admin"):
        cell.check(page.status_code == 200, "moderation queue page", f"status {page.status_code}")
        cell.check(api.status_code == 200, "moderation queue API", f"status {api.status_code}")
        if cell.state == "pending":
            cell.check(WORDS["pending"].answer in page.text, "moderation queue page", "missing")
            queued = {entry["post_id"] for entry in api.json()}
            cell.check(
                {held.question_id, held.answer_id} <= queued,
                "moderation queue API",
                f"held posts missing from {queued}",
            )
        return
    for response, surface in ((page, "moderation queue page"), (api, "moderation queue API")):
        cell.check(response.status_code != 200, surface, "opens")
        leaked = found(response.text, cell.item_words)
        cell.check(not leaked, surface, f"shows {leaked}")


SURFACES: list[tuple[str, Callable[[Cell, World], None]]] = [
    ("thread lists", check_thread_lists),
    ("thread pages", check_thread_pages),
    ("answers in a visible thread", check_answers_in_visible_thread),
    ("revisions and edit form", check_post_details),
    ("profiles", check_profiles),
    ("notifications", check_notifications),
    ("search", check_search),
    ("moderation queue", check_moderation_queue),
]

# What each profile may count (questions, answers, accepted): the writer asked the control
# thread and answered the host once visibly; the helper's only answer in a visible thread is
# the control's accepted one; the others have nothing visible.
PROFILE_COUNTS = {
    "writer": (1, 1, 0),
    "newbie": (0, 0, 0),
    "suspendee": (0, 0, 0),
    "helper": (0, 1, 1),
}


def check_visible_content_and_counters(cell: Cell, world: World, db: Session) -> None:
    """The other side of every check above: visible content does show, and every counter
    counts it and nothing else. The visible threads are the host and the control, each with
    its question and one visible answer: 2 threads, 4 posts."""
    control, host = world.control, world.host_id
    page = cell.get("/b/acme/mobile")
    for thread_id in (host, control.thread_id):
        cell.check(f'href="/t/{thread_id}"' in page.text, "forum page", f"/t/{thread_id} missing")
    host_row = next((r for r in thread_rows(page.text) if f'href="/t/{host}"' in r), "")
    cell.check(stat(host_row, "Answers") == 1, "forum page answer count", "host row not 1")
    router = re.search(r">router \((\d+)\)<", page.text)
    cell.check(
        router is not None and router.group(1) == "2",
        "forum page tag count",
        f"'router' counts {router and router.group(1)} threads, 2 are visible",
    )
    listing = cell.json(f"/api/v1/forums/{world.forum_id}/threads?sort=activity&limit=100")
    counted = {e["id"]: e["reply_count"] for e in listing.get("items", [])}
    cell.check(counted.get(host) == 1, "forum API reply_count", f"host {counted.get(host)}")
    detail = cell.json(f"/api/v1/threads/{host}")
    cell.check(
        detail.get("reply_count") == 1, "thread API reply_count", f"{detail.get('reply_count')}"
    )
    thread_page = cell.get(f"/t/{host}")
    cell.check(WORDS["visible"].answer in thread_page.text, "thread page", "visible answer missing")
    if not cell.staff:
        cell.check("1 answer<" in thread_page.text, "thread page heading", "not '1 answer'")

    for url in ("/", "/b/acme"):
        page = cell.get(url)
        counts = (stat(page.text, "Threads"), stat(page.text, "Posts"))
        cell.check(counts == (2, 4), f"brand page {url}", f"threads, posts = {counts}, not (2, 4)")
    forums = cell.get("/api/v1/brands/acme/forums").json()
    mobile = next(entry for entry in forums if entry["slug"] == "mobile")
    counts = (mobile["thread_count"], mobile["post_count"])
    cell.check(counts == (2, 4), "forums API", f"thread_count, post_count = {counts}, not (2, 4)")

    for username, visible_counts in PROFILE_COUNTS.items():
        page = cell.get(f"/u/{username}")
        profile = tuple(stat(page.text, name) for name in ("Questions", "Answers", "Accepted"))
        cell.check(
            profile == visible_counts,
            f"profile /u/{username} counts",
            f"{profile}, not {visible_counts}",
        )
    writer_page = cell.get("/u/writer").text
    cell.check(WORDS["visible"].title in writer_page, "profile /u/writer", "control missing")

    control_url = f"/t/{control.thread_id}"
    for query, findable in (
        ("scope=community&forum=mobile&per_page=50", {control_url, f"/t/{host}"}),
        ("scope=kb&type=solution&per_page=50", {control_url}),
        (f"scope=community&q={WORDS['visible'].title}", {control_url}),
        (f"scope=community&q={WORDS['visible'].answer}", {f"/t/{host}"}),
    ):
        result = cell.json(f"/api/v1/brands/acme/search?{query}")
        urls = {hit["url"] for hit in result.get("hits", [])}
        cell.check(findable <= urls, f"search API ?{query}", f"finds {urls}, not {findable}")
    suggested = cell.get(f"/b/acme/kb/suggest?title={WORDS['visible'].title}")
    cell.check(control_url in suggestion_links(suggested.text), "suggestions", "control missing")
    home = cell.get("/b/acme/kb")
    cell.check(WORDS["visible"].title in home.text, "KB home", "the visible solution is missing")

    # Held posts notify nobody until approved (the approval test shows them arrive then).
    fresh(db)
    pending = world.content["pending"]
    held = [pending.question_id, pending.answer_id]
    early = db.scalars(select(Notification).where(Notification.post_id.in_(held))).all()
    cell.check(not early, "notifications (database)", f"{len(early)} sent about held posts")
    viewer = cell.viewer.user
    if viewer is None or not cell.viewer.signed_in:
        return
    # How many of this person's notifications are about visible content (or are moderation
    # notices, always shown), counted independently of the product's filter.
    hidden_posts, hidden_threads = world.non_visible_posts(), world.non_visible_threads()
    rows = db.scalars(select(Notification).where(Notification.user_id == viewer.id)).all()
    expected = sum(
        1
        for row in rows
        if row.kind == NotificationKind.MODERATION
        or (row.post_id not in hidden_posts and row.thread_id not in hidden_threads)
    )
    items = cell.json("/api/v1/notifications?limit=100").get("items", [])
    cell.check(len(items) == expected, "notifications API", f"{len(items)} items, not {expected}")
    unread = cell.json("/api/v1/notifications/unread-count").get("unread")
    cell.check(unread == expected, "notifications API unread-count", f"{unread}, not {expected}")
    page = cell.get("/notifications")
    listed = page.text.split('<ul class="notification-list">', 1)
    entries = listed[1].split("</ul>", 1)[0].count("<li") if len(listed) == 2 else 0
    cell.check(entries == expected, "notifications page", f"{entries} entries, not {expected}")
    cell.check(f"{expected} unread" in page.text, "notifications page", f"not '{expected} unread'")
    count = re.search(r'<span class="count">(\d+)</span>', cell.get("/notifications/count").text)
    badge_count = int(count.group(1)) if count else 0
    cell.check(badge_count == expected, "notification badge /notifications/count", f"{badge_count}")
    # ...and what is visible arrives: the mention in the control question, or for its author
    # the answer to it.
    wanted = control.reply_id if viewer.username == control.author else control.question_id
    cell.check(
        any(entry["post_id"] == wanted for entry in items),
        "notifications API",
        "the notification about visible content is missing",
    )


# --- the tests ---------------------------------------------------------------------------------


@pytest.fixture
def worker(settings: Settings, engine: Engine) -> Worker:
    return Worker(settings, make_session_factory(engine))


def test_visibility_matrix(
    subtests: pytest.Subtests,
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    as_role: RoleClient,
    worker: Worker,
) -> None:
    """Every surface x every state x every role, one subtest per cell."""
    world = build_world(db, qa, forum, make_user, make_client, as_role, worker)
    cache: dict[tuple[int, str, bool], Response] = {}
    for role in ROLES:
        with subtests.test("visible content and counters", role=role, state="visible"):
            # The author's view of visible content: the writer's.
            cell = Cell(role, "visible", world.viewers[role]["hidden"], cache)
            check_visible_content_and_counters(cell, world, db)
            assert not cell.problems, cell.report()
        for surface, check in SURFACES:
            for state in STATES:
                with subtests.test(surface, role=role, state=state):
                    cell = Cell(role, state, world.viewers[role][state], cache)
                    check(cell, world)
                    assert not cell.problems, cell.report()
    with subtests.test("private follow-up on every surface read"):
        leaks = [
            f"{url}: {found(response.text, PRIVATE_WORDS)}"
            for (_client, url, _htmx), response in cache.items()
            if found(response.text, PRIVATE_WORDS)
        ]
        assert not leaks, leaks
        # What was read: every role's pages, JSON and searches, the host thread among them.
        assert len(cache) > 200 and any(url == f"/t/{world.host_id}" for _c, url, _h in cache)


# --- the moments content changes state ---------------------------------------------------------


def test_held_posts_notify_list_and_count_only_once_approved(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
) -> None:
    moderator = make_user("warden", role=Role.MODERATOR)
    asker, watcher = make_user("asker"), make_user("watcher")
    newbie = make_user("newbie", trust_level=0)
    host = qa.ask(asker, title="Hedgehog hub keeps rebooting overnight", tags=["router"])
    threads.watch(db, watcher, host)
    db.commit()
    question = qa.ask(newbie, title=title_for("pangolin"), body="Tapir option gone. @watcher")
    answer = qa.answer(newbie, host, "The okapi trick helped me. @watcher")
    assert (question.visibility, answer.visibility) == (Visibility.PENDING, Visibility.PENDING)

    watching, asking, anonymous = make_client(), make_client(), make_client()
    log_in(watching, "watcher")
    log_in(asking, "asker")

    def notified(client: TestClient) -> set[int]:
        response = client.get("/api/v1/notifications")
        assert response.status_code == 200
        return {entry["post_id"] for entry in response.json()["items"]}

    def counts() -> tuple[int, int]:
        mobile = anonymous.get("/api/v1/brands/acme/forums").json()[0]
        return mobile["thread_count"], mobile["post_count"]

    assert notified(watching) == set(), "held posts' mentions notified before approval"
    assert notified(asking) == set(), "a held answer notified the asker before approval"
    assert "0 unread" in watching.get("/notifications").text
    assert "pangolin" not in anonymous.get("/b/acme/mobile").text
    assert "okapi" not in anonymous.get(f"/t/{host.id}").text
    assert counts() == (1, 1), "held posts are counted"

    fresh(db)
    question_post = visibility.question_of(db, db.get(Thread, question.id))  # type: ignore[arg-type]
    for post_id in (question_post.id, answer.id):
        item = db.scalars(select(QueueItem).where(QueueItem.post_id == post_id)).one()
        decisions.resolve(db, moderator, item, decisions.Decision.APPROVE)
    db.commit()
    announce_published(db)  # the worker's job, right after the approval

    assert notified(watching) == {question_post.id, answer.id}, "approval did not notify"
    assert notified(asking) == {answer.id}
    page = watching.get("/notifications").text
    assert "2 unread" in page and "pangolin" in page
    assert "pangolin" in anonymous.get("/b/acme/mobile").text
    assert "okapi" in anonymous.get(f"/t/{host.id}").text
    assert counts() == (2, 3)


@pytest.mark.parametrize("ending", ["unsuspend", "expiry"])
def test_suspended_members_content_stays_hidden_until_the_suspension_ends(
    ending: str,
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
) -> None:
    moderator = make_user("warden", role=Role.MODERATOR)
    asker, suspendee = make_user("asker"), make_user("suspendee")
    host = qa.ask(asker, title="Hedgehog hub keeps rebooting overnight")
    own = qa.ask(suspendee, title=title_for("narwhal"), body="The caracal option vanished.")
    qa.answer(suspendee, host, "The manatee trick helped me.")
    anonymous, member = make_client(), make_client()
    make_user("reader")
    log_in(member, "reader")

    def seen(client: TestClient) -> dict[str, object]:
        forums = client.get("/api/v1/brands/acme/forums").json()[0]
        return {
            "thread page": client.get(f"/t/{own.id}").status_code,
            "answer": "manatee" in client.get(f"/t/{host.id}").text,
            "listed": "narwhal" in client.get("/b/acme/mobile").text,
            "counts": (forums["thread_count"], forums["post_count"]),
        }

    shown = {"thread page": 200, "answer": True, "listed": True, "counts": (2, 3)}
    removed = {"thread page": 404, "answer": False, "listed": False, "counts": (1, 1)}
    assert seen(anonymous) == shown

    accounts.suspend(db, moderator, suspendee, days=7, reason="abusive messages")
    db.commit()
    # The worker's sweep leaves a suspension that has not run out alone.
    accounts.end_expired_suspensions(db)
    db.commit()
    for client, who in ((anonymous, "anonymous"), (member, "member")):
        assert seen(client) == removed, f"{who} sees a suspended member's content"

    if ending == "unsuspend":
        fresh(db)
        target = db.get(User, suspendee.id)
        assert target is not None
        accounts.unsuspend(db, moderator, target)
        db.commit()
        assert seen(anonymous) == shown
        return
    with time_machine.travel(utcnow() + timedelta(days=8), tick=False):
        assert seen(anonymous) == removed, "shown again before the worker's sweep"
        fresh(db)
        assert accounts.end_expired_suspensions(db) == 1
        db.commit()
        assert seen(anonymous) == shown


@pytest.fixture
def mail_worker(
    settings: Settings, engine: Engine, smtp: tuple[Inbox, int]
) -> Callable[[], Worker]:
    """A worker that sends e-mail through the real SMTP server on loopback. Search is left
    unconfigured: these tests are about mail, and indexing waits for its retry."""
    _inbox, port = smtp
    configured = settings.model_copy(
        update={
            "smtp_url": f"smtp://127.0.0.1:{port}",
            "base_url": "https://support.example",
            "meili_url": None,
        }
    )
    return lambda: Worker(configured, make_session_factory(engine))


@pytest.mark.parametrize("preference", [EmailPreference.IMMEDIATE, EmailPreference.DAILY])
def test_notification_emails_leave_out_content_removed_before_they_go_out(
    preference: EmailPreference,
    db: Session,
    qa: QA,
    make_user: UserFactory,
    smtp: tuple[Inbox, int],
    mail_worker: Callable[[], Worker],
) -> None:
    """E-mail is the notifications' other way out: a mention in a post hidden before the
    e-mail (or the day's digest) is sent must not mail its title or link either."""
    inbox, _port = smtp
    moderator, writer = make_user("warden", role=Role.MODERATOR), make_user("writer")
    reader = make_user("reader")
    reader.email_notifications = preference
    db.commit()
    kept = qa.ask(writer, title=title_for("capybara"), body="Chinchilla gone. @reader")
    removed = qa.ask(writer, title=title_for("marmoset"), body="Gibbon gone. @reader")
    fresh(db)
    question = visibility.question_of(db, db.get(Thread, removed.id))  # type: ignore[arg-type]
    actions.set_post_visibility(db, moderator, question, Visibility.HIDDEN, reason="spam")
    db.commit()

    if preference == EmailPreference.IMMEDIATE:
        mail_worker().run_once()
    else:
        with time_machine.travel(utcnow() + timedelta(days=1, minutes=1)):
            mail_worker().run_once()  # a fresh worker runs its digest sweep at once
    address = "reader@example.com"
    subjects = [inbox.subject(index, address) for index in range(len(inbox.to(address)))]
    sent = "\n".join(subjects + inbox.bodies())
    assert "capybara" in sent, f"the visible mention was not mailed ({preference})"
    leaked = [
        line for line in sent.splitlines() if "marmoset" in line or f"/t/{removed.id}" in line
    ]
    assert not leaked, f"notification e-mail ({preference.value}) about a hidden thread: {leaked}"
    assert f"/t/{kept.id}" in sent
