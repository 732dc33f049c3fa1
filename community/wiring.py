"""Start-up wiring: every package above the core connects its handlers to the domain events
(community.core.events). The app factory, the worker and the CLI call subscribe_all(); calling it
again changes nothing."""

from __future__ import annotations

from crowdservice import subscribers as crowdservice_subscribers
from moderation import subscribers as moderation_subscribers


def subscribe_all() -> None:
    moderation_subscribers.subscribe()
    crowdservice_subscribers.subscribe()
