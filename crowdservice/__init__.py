"""Crowd-service: triage, SLA, escalation, agent workspace, helpdesk webhooks, analytics."""
