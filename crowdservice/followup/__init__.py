"""Private follow-up on a public thread: the support team and the thread's author talk where
personal data (account numbers, addresses) stays out of the public page, the search index and
the knowledge base."""
