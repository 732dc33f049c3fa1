"""Start-up wiring: every package above the core connects its handlers to the domain events
(community.core.events). The app factory, the worker and the CLI call subscribe_all(); calling it
again changes nothing. The app factory also adds the domains' gauges to /metrics
(register_metrics)."""

from __future__ import annotations

from community.core import metrics
from community.members import subscribers as members_subscribers
from crowdservice import metrics as crowdservice_metrics
from crowdservice import subscribers as crowdservice_subscribers
from moderation import subscribers as moderation_subscribers


def subscribe_all() -> None:
    moderation_subscribers.subscribe()
    crowdservice_subscribers.subscribe()
    members_subscribers.subscribe()


def register_metrics() -> None:
    metrics.add_database_gauges(crowdservice_metrics.database_gauges)
