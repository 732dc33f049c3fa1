"""What the members package does when the layers below publish an event
(community.core.events): badges, and followers told of new threads."""

from __future__ import annotations

from community.core import events
from community.members import badges, follows


def subscribe() -> None:
    # Announced by the worker once visible: followers hear of new questions, and first posts
    # earn their badges, outside the writer's transaction.
    events.post_announced.connect(follows.on_post_announced)
    events.post_announced.connect(badges.on_post_announced)
    events.answer_accepted.connect(badges.on_accepted)
    events.helpful_marked.connect(badges.on_helpful_marked)
    events.answer_upvoted.connect(badges.on_answer_upvoted)
    events.trust_level_changed.connect(badges.on_trust_level_changed)
