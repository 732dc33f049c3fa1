"""The agent workspace: the queue of escalations, claiming (exactly one holder, whatever the
race), answering in public, asking the author for details, handing off to the helpdesk,
returning to the community, resolving, and the whole context of one item (the queue's counts
and an agent's own figures are in crowdservice/figures.py).

- `access`: loading an escalation for an agent (who works escalations, agents and admins,
  admins being the "lead agents" who may act on an item someone else holds and reassign it, is
  community.core.policy's to say);
- `clocks`: the due time that matters now, and the pauses while waiting on the customer;
- `actions`: claim, release, reassign, respond, ask for details; `links`: answer with a link to
  a KB entry or a solved thread; `handoff`: hand off, return, resolve, and what the helpdesk
  receives;
- `queue_listing`: the queue, a page at a time, and its counts (`queue_sql`: its clock in SQL);
- `queries`: one item's context and similar entries;
- `dispatch`: the table from an action's name in the URL to the action and its message.

Every state change is a `do_*`-style action: it checks who may do it, changes the rows, writes
the audit entry and records side effects (notifications, webhook deliveries, search outbox) in
the caller's transaction. Nothing here commits.
"""

from crowdservice.agent.access import ACTIVE_STATUSES, access_escalation
from crowdservice.agent.actions import ask_details, claim, reassign, release, respond
from crowdservice.agent.clocks import resolution_due, seconds_left
from crowdservice.agent.dispatch import (
    ACTION_HANDLERS,
    ActionForm,
    assignable_agents,
    perform,
    require_known_action,
)
from crowdservice.agent.handoff import context_payload, hand_off, resolve, return_to_community
from crowdservice.agent.links import link_answer
from crowdservice.agent.queries import item_context, similar_entries
from crowdservice.agent.queue_listing import (
    PAGE_SIZE,
    QueueCounts,
    QueueFilters,
    QueueListing,
    Workload,
    queue,
    queue_counts,
)

__all__ = [
    "ACTION_HANDLERS",
    "ACTIVE_STATUSES",
    "PAGE_SIZE",
    "ActionForm",
    "QueueCounts",
    "QueueFilters",
    "QueueListing",
    "Workload",
    "access_escalation",
    "ask_details",
    "assignable_agents",
    "claim",
    "context_payload",
    "hand_off",
    "item_context",
    "link_answer",
    "perform",
    "queue",
    "queue_counts",
    "reassign",
    "release",
    "require_known_action",
    "resolution_due",
    "resolve",
    "respond",
    "return_to_community",
    "seconds_left",
    "similar_entries",
]
