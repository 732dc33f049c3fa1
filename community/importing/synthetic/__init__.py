"""A deterministic synthetic support community: the source behind `community seed --scale N`.

Every record is computed from `(seed, k)` alone: thread k has its own `random.Random` seeded
with the string ``"{seed}:t:{k}"`` (string seeds hash with SHA-512, the same on every platform
and Python 3 version), and user j its own ``"{seed}:u:{j}"``. So `SyntheticSource(2 * n)`
yields everything `SyntheticSource(n)` yields, unchanged, plus threads n+1..2n, and the source
`name` leaves the scale out: seeding again at a larger scale imports only the new threads.
Nothing is held across threads, so memory stays flat whatever the scale. Each part replays a
thread's cheap outline (dates, kind, topic, answer count, votes) from the start of its stream,
then continues the stream for what only that part needs (authors, text).

Ids: question k is post ``100 * k`` and its answers ``100 * k + 1 ..``. Questions and answers
share one id space, as Stack Exchange posts do. Comment i on post p is ``100 * p + i``.
Users are ``1 .. max(5, ceil(threads / 3))``, and thread k only picks authors among the first
``max(5, ceil(k / 3))``, so adding threads never changes who wrote the earlier ones.

Distributions (the shape of a brand's support community):

- dates: threads start in the 730 days before 2026-01-01 UTC, age ~ 730 d * U^1.25 (somewhat
  more recent activity, as a growing community has); answer i follows the previous post after
  a log-normal delay (median 4 h for the first answer, 10 h after that, sigma 1.6), comments
  follow their post after a log-normal delay (median 2 h); anything that would land after the
  anchor date has not happened yet and is left out. ``last_activity_at`` is the newest post.
- kinds: 62% question, 20% problem, 7% idea, 6% complaint, 5% praise. Questions split into
  how-to, device trouble and account/billing; each kind has its own title and body templates.
- locale: 20% "es" (Spanish text throughout the thread), 80% "en".
- answers per thread: 20% none; otherwise 1 + floor(Lomax(scale 3, shape 2.5)), at most 30.
  Mean about 2, with a long tail.
- accepted answer: 50% of answered questions and problems, 12% of the other kinds (about 45%
  overall), the first answer 55% of the time.
- votes: up = floor(Lomax(shape 1.8)) scaled by a per-thread "heat" ~ LogNormal(0, 0.75), so
  most posts get 0-3 and a few get dozens or hundreds. Accepted answers get twice the scale and
  later answers get less. down ~ 5% of up (stochastically rounded), plus a stray downvote on 2%
  of posts. `VoteTotals` only for posts with votes; `score` = up - down.
- views: LogNormal(ln 120, 1.0) * heat * (1 + age in days / 240), times 1.6 when answered.
  That gives tens to tens of thousands.
- tags: 1-5 per question, from a vocabulary of 100: the product's tag (28 products), the
  topic's tag (symptom, how-to task, account issue or feature) and 0-3 setting tags ("android",
  "5ghz", "beta"...; 0/1/2/3 with 45/30/17/8%). Products, topics and setting tags are each
  drawn Zipf-like (weight 1/rank), so a few tags dominate.
- users: authors are picked as ``1 + floor(pool * U^a)``, a power law favouring low ids (a = 1.5
  for askers, 2.5 for answerers, 2.2 for commenters): a few veterans write most answers.
  A user joins before their first post: the five founders joined before the window; every
  other user joins at a time spread over the window and the 120 days before it, and is only
  picked for posts after that (three tries, then a founder). Reputation
  ~ 20000 / id^0.85 * LogNormal(0, 0.8). Display names come from small English and Spanish
  name lists (not Faker: faster, and its output changes between versions).
- deleted authors: 1.5% of questions, 1% of answers and 3% of comments have no author. A
  deleted comment author keeps a display name.
- comments: per post Geometric(p = 2/3), so 0.5 on average; 35% come from the asker.
- duplicates: about 1% of threads, all questions or problems, duplicate an earlier one (lower
  k and an earlier date, also a question or problem) and reuse its product and topic.

The package, in reading order: `vocabulary.py` (topic tables, phrase templates and names, the
large ones in `data/*.txt`), `randomness.py` (seeded streams and distributions), `outline.py`
(a thread's outline), `text.py` (names and bodies from the templates) and `source.py`
(`SyntheticSource`, the parts as records).
"""
