"""What moderation does when the layers below it publish an event (community.core.events)."""

from __future__ import annotations

from community.core import events
from moderation import queue


def subscribe() -> None:
    events.post_submitted.connect(queue.screen_submission)
