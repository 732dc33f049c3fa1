"""What crowd-service does when the layers below it publish an event (community.core.events)."""

from __future__ import annotations

from community.core import events
from crowdservice import service
from crowdservice.known_issues import linking as known_issue_linking


def subscribe() -> None:
    events.post_published.connect(service.on_published)
    events.answer_accepted.connect(service.on_accepted)
    # New questions that report a known issue are linked to it (by the worker).
    events.post_published.connect(known_issue_linking.on_published)
