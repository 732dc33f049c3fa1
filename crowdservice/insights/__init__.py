"""Insights: the figures a brand's support lead reads, computed from what the product already
records (threads with their triage, escalations with their deadlines, SLA breaches).

Every figure has one definition, written next to the code that computes it, on the page and
in the README; the page, the JSON API and the CSV export call the same functions, so they
cannot disagree. A period is a range of whole UTC days, both ends included.
"""
