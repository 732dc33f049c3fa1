"""What crowd-service does when the layers below it publish an event (community.core.events)."""

from __future__ import annotations

from community.core import events
from crowdservice import experts, service
from crowdservice.known_issues import linking as known_issue_linking


def subscribe() -> None:
    events.post_published.connect(service.on_published)
    events.answer_accepted.connect(service.on_accepted)
    # An invited expert's answer is recorded by the worker, after the answer's transaction.
    events.post_announced.connect(experts.on_post_announced)
    # New questions that report a known issue are linked to it (by the worker).
    events.post_published.connect(known_issue_linking.on_published)
