"""What crowd-service does when the layers below it publish an event (community.core.events)."""

from __future__ import annotations

from community.core import events
from crowdservice import service


def subscribe() -> None:
    events.post_published.connect(service.on_published)
    events.answer_accepted.connect(service.on_accepted)
