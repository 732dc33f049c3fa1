"""Saved replies: a brand's agreed wording for the support team's answers, with placeholders
filled from the thread, in the languages the brand answers in.

- `service`: admins write, change, archive and bring back replies (checked, audited);
- `placeholders`: `{author_name}`, `{thread_title}`, `{kb_link}`, `{agent_name}`, filled by a
  lookup in a dict, never by str.format;
- `use`: agents find a reply from the answer box, insert it filled for the thread, and a use
  is counted when the answer is sent (crowdservice.agent.dispatch).
"""
