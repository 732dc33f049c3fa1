"""Domain events: how a lower layer tells the layers above it that something happened.

The code that publishes names the event (`events.post_published.send(db, post)`); the packages
above connect their handlers at start-up (community.wiring, called by the app factory, the worker
and the CLI), so `grep post_published` shows who listens. Handlers run at once, in the order they
were connected, in the publisher's session and transaction: like the publisher they flush and
never commit, and anything done after commit goes through the outbox. An event nobody listens to
does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

from community.core.models import Forum, Post, Thread, User

Payload = TypeVar("Payload")


class Event(Generic[Payload]):
    def __init__(self, name: str) -> None:
        self.name = name
        self._handlers: list[Callable[[Session, Payload], None]] = []

    def __repr__(self) -> str:
        return f"<Event {self.name}: {len(self._handlers)} handlers>"

    @property
    def handlers(self) -> tuple[Callable[[Session, Payload], None], ...]:
        return tuple(self._handlers)

    def connect(self, handler: Callable[[Session, Payload], None]) -> None:
        """Add a handler; connecting the same one again is a no-op (start-up may run twice)."""
        if handler not in self._handlers:
            self._handlers.append(handler)

    def disconnect(self, handler: Callable[[Session, Payload], None]) -> None:
        if handler in self._handlers:
            self._handlers.remove(handler)

    def send(self, db: Session, payload: Payload) -> None:
        for handler in tuple(self._handlers):
            handler(db, payload)


@dataclass
class Submission:
    """A new question or answer, not yet public (a new answer not even stored: a handler that
    needs its id flushes first). A screening handler sets `held` to keep it for a moderator;
    otherwise the publisher makes it public."""

    post: Post
    author: User
    forum: Forum
    text: str
    held: bool = False


@dataclass(frozen=True)
class Acceptance:
    thread: Thread
    post: Post


# A question or answer was written (moderation screens it: spam, blocked words, bursts).
post_submitted: Event[Submission] = Event("post_submitted")
# A question or answer became visible, at creation or when a moderator approved it
# (crowd-service triages questions, sets their deadlines and follows up on escalations).
post_published: Event[Post] = Event("post_published")
# The worker announced a post that became visible (community.visibility.announce): a moment
# after post_published, outside the writer's transaction, and only if the post is still
# visible. For what can wait that moment (crowd-service records an invited expert's answer).
post_announced: Event[Post] = Event("post_announced")
# The asker or the support team accepted an answer (crowd-service resolves the escalation).
answer_accepted: Event[Acceptance] = Event("answer_accepted")
# Someone marked a thread "this helped me too" (members award the asker's helpful badge).
helpful_marked: Event[Thread] = Event("helpful_marked")
# An upvote landed on an answer; the post's counters are this vote's (members award badges).
answer_upvoted: Event[Post] = Event("answer_upvoted")
# A member's trust level went up or was set by a moderator (members award trust badges).
trust_level_changed: Event[User] = Event("trust_level_changed")
