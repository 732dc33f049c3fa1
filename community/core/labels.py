"""Readable, translated names for stored values (roles, kinds, statuses, visibilities)."""

from __future__ import annotations

from community.core.i18n import gettext


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional "mark for extraction" name
    """Mark a string for the catalog without translating it yet."""
    return message


LABELS = {
    "member": N_("Member"),
    "moderator": N_("Moderator"),
    "agent": N_("Agent"),
    "admin": N_("Administrator"),
    "question": N_("Question"),
    "problem": N_("Problem"),
    "complaint": N_("Complaint"),
    "idea": N_("Idea"),
    "praise": N_("Praise"),
    "discussion": N_("Discussion"),
    "open": N_("Open"),
    "answered": N_("Answered"),
    "solved": N_("Solved"),
    "escalated": N_("Escalated"),
    "closed": N_("Closed"),
    "locked": N_("Locked"),
    "visible": N_("Visible"),
    "pending": N_("Pending approval"),
    "hidden": N_("Hidden"),
    "deleted": N_("Deleted"),
    "sort:activity": N_("Active"),
    "sort:newest": N_("Newest"),
    "sort:unanswered": N_("Unanswered"),
    "sort:top": N_("Top"),
    "sort:solved": N_("Solved"),
    "immediate": N_("Right away"),
    "daily": N_("Once a day (digest)"),
    "off": N_("Never"),
    "facet:type": N_("Type"),
    "facet:tags": N_("Tag"),
    "facet:forum": N_("Forum"),
    "facet:locale": N_("Language"),
    "facet:kind": N_("Kind"),
    "facet:status": N_("Status"),
    "hit:solution": N_("Community solution"),
    "hit:article": N_("Article"),
    "hit:thread": N_("Thread"),
    "hit-state:article": N_("KB article"),
    "hit-state:solved": N_("Solved"),
    "hit-state:answered": N_("Answered"),
    "solution": N_("Community solution"),
    "article": N_("Article"),
    "en": N_("English"),
    "es": N_("Spanish"),
    "article:draft": N_("Draft"),
    "article:in_review": N_("In review"),
    "article:published": N_("Published"),
    "article:archived": N_("Archived"),
    "to:draft": N_("Back to draft"),
    "to:in_review": N_("Send for review"),
    "to:published": N_("Publish"),
    "to:archived": N_("Archive"),
    "queue:pending": N_("Waiting for approval"),
    "queue:flagged": N_("Flagged by members"),
    "queue:users": N_("Reported accounts"),
    "decision:approve": N_("Approve"),
    "decision:reject": N_("Reject"),
    "decision:hide": N_("Hide"),
    "decision:delete": N_("Delete"),
    "decision:spam": N_("Spam: delete and suspend"),
    "decision:users:approve": N_("Dismiss"),
    "decision:users:spam": N_("Suspend and remove their posts"),
    "decision:flagged:approve": N_("Dismiss flags"),
    "decision:flagged:hide": N_("Hide post"),
    "decision:flagged:delete": N_("Remove post"),
    "decision:flagged:spam": N_("Spam: remove post and suspend"),
    "confirm:delete": N_(
        "Remove this post for everyone? Its author and the members who flagged it are told; a "
        "moderator can restore it from the thread."
    ),
    "confirm:spam": N_(
        "Remove this post and everything else its author posted, and suspend the account for a "
        "year?"
    ),
    "confirm:users:spam": N_("Suspend this account for a year and remove everything it posted?"),
    "resolution:approve": N_("approved"),
    "resolution:reject": N_("rejected"),
    "resolution:hide": N_("hidden"),
    "resolution:delete": N_("deleted"),
    "resolution:spam": N_("removed as spam"),
    "trust:days_visited": N_("Days visited"),
    "trust:threads_read": N_("Threads read"),
    "trust:posts": N_("Posts"),
    "trust:upvotes": N_("Upvotes received"),
    "trust:accepted": N_("Accepted answers"),
    "trust:account_days": N_("Account age in days"),
    "trust:max_flags_upheld": N_("At most this many flags upheld"),
    "resolution:flagged:approve": N_("flags dismissed"),
    "resolution:flagged:hide": N_("post hidden"),
    "resolution:flagged:delete": N_("post removed"),
    "resolution:users:approve": N_("report dismissed"),
    "resolution:users:spam": N_("account suspended and posts removed"),
    "flag:spam": N_("spam"),
    "flag:offensive": N_("offensive"),
    "flag:off_topic": N_("off-topic"),
    "flag:duplicate": N_("a duplicate"),
    "flag:needs_agent": N_("needing the support team"),
    "flag:other": N_("something else"),
    "flagstatus:open": N_("waiting for a moderator"),
    "flagstatus:upheld": N_("upheld: the post was dealt with"),
    "flagstatus:rejected": N_("reviewed: the post stays"),
    "close:off_topic": N_("Closed as off-topic"),
    "close:resolved": N_("Closed as resolved"),
    "close:duplicate": N_("Closed as a duplicate"),
    # Reasons imported from Stack Exchange closures (moderators here close with the above).
    "close:unclear": N_("Closed as unclear"),
    "close:too_broad": N_("Closed as too broad"),
    "close:opinion": N_("Closed as opinion-based"),
    "close:too_localized": N_("Closed as too localized"),
    "close:general_reference": N_("Closed as general reference"),
    "close:other": N_("Closed"),
    "filter:enforce": N_("Holds posts"),
    "filter:log_only": N_("Log only"),
    "filteraction:enforce": N_("Enforce"),
    "filteraction:log_only": N_("Log only"),
    "filteraction:delete": N_("Remove"),
    "flagreason:spam": N_("Spam"),
    "flagreason:offensive": N_("Offensive or abusive"),
    "flagreason:off_topic": N_("Off-topic"),
    "flagreason:duplicate": N_("Duplicate of another thread"),
    "flagreason:needs_agent": N_("Needs the support team"),
    "flagreason:other": N_("Something else"),
    "rep:vote": N_("Votes on your post"),
    "rep:accepted": N_("Your answer was accepted"),
    "rep:accepted_an_answer": N_("You accepted an answer"),
    "rep:unaccepted": N_("Your answer is no longer accepted"),
    "rep:unaccepted_by_you": N_("You withdrew an acceptance"),
    "type:question": N_("Question"),
    "type:problem": N_("Problem or incident"),
    "type:complaint": N_("Complaint"),
    "type:suggestion": N_("Suggestion or idea"),
    "type:praise": N_("Praise or opinion"),
    "type:incorrect_info": N_("Incorrect information report"),
    "sentiment:negative": N_("Negative"),
    "sentiment:neutral": N_("Neutral"),
    "sentiment:positive": N_("Positive"),
    "segment:new": N_("New member"),
    "segment:customer": N_("Verified customer"),
    "segment:active_contributor": N_("Active contributor"),
    "segment:advocate": N_("Advocate"),
    "segment:influencer": N_("Influencer"),
    "segment:detractor": N_("Detractor"),
    "segment:troll": N_("Troll"),
    "esc:open": N_("Waiting for an agent"),
    "esc:claimed": N_("An agent is on it"),
    "esc:answered": N_("Answered by the support team"),
    "esc:waiting": N_("Waiting for the customer"),
    "esc:handed_off": N_("Handed to the helpdesk"),
    "esc:resolved": N_("Resolved"),
    "esc:returned": N_("Returned to the community"),
    "escreason:no_response": N_("No answer in time"),
    "escreason:critical": N_("Critical (P1)"),
    "escreason:author_request": N_("The author asked for the support team"),
    "escreason:moderator": N_("Escalated by a moderator"),
}


def label(value: str) -> str:
    return gettext(LABELS.get(value, value))


def queue_label(kind: str, queue: str, value: str) -> str:
    """A queue action's name ("decision"), outcome ("resolution") or question ("confirm") as
    that queue means it: approving in the flagged queue keeps the post and dismisses the flags,
    in the reported-accounts queue it dismisses the report."""
    key = f"{kind}:{queue}:{value}"
    return label(key if key in LABELS else f"{kind}:{value}")


def sort_label(sort: str) -> str:
    return label(f"sort:{sort}")
