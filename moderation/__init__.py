"""Moderation: flags, queues, actions, trust levels, rate limits, spam filters and the audit log."""
