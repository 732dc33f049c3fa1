"""Saved replies: a brand's agreed wording for the support team's answers, with placeholders
filled from the thread, in the languages the brand answers in."""
