"""Triage on arrival: what a thread is, how its author feels, who the author is, and how soon it
needs an answer (../shared/DESIGN.md section 5, flow 2).

Everything here is transparent on purpose: agents see why a thread got its priority
(`TriageResult.reasons`), brands read and edit the priority rules (`ServicePolicy.triage_rules`,
JSON, first match wins), and staff corrections are kept and measured (`TriageResult.original`).

The modules, in the order a post goes through them:

- `words`: folding ("Está caído" -> "esta caido"), padded word strings, the cue tables in
  `cues/*.toml` (word and phrase lists with their weights: data, not code).
- `language`: the thread's locale unless the text is clearly in the other language.
- `sentiment`: VADER (Hutto & Gilbert 2014) for English with support-domain additions
  (`lexicons/en_extra.txt`: "help", "please" and "refund" carry no feeling, "outage" and
  "laggy" do, "error" and "problem" are milder than in tweets); for Spanish VADER's algorithm
  runs on our own lexicon (`lexicons/es_vader.txt`, VADER's tab format, accent-free words)
  after Spanish negators and degree words are mapped to the ones VADER knows ("no" -> "not",
  "nunca" -> "never", "muy" -> "very", "pero" -> "but"). Before scoring, politeness formulas
  ("thanks in advance", "gracias de antemano"), product names ("smart plug", "guia rapida")
  and wishes in the conditional ("it would be great if", "seria genial que") are removed:
  manners, names and imagined products are not feelings; a few idioms ("thanks for nothing",
  "hasta las narices") are read as one word. Each sentence is scored and the compound is the
  normalised sum, so one furious sentence is not averaged away by polite ones. Thresholds:
  compound >= POSITIVE_AT (0.35) is positive, <= NEGATIVE_AT (-0.3) negative.
- `interaction`: the interaction type from weighted keyword and phrase cues per type in English
  and Spanish (accent- and case-insensitive; "stem*" matches a word prefix; a cue inside a
  longer one found in the same post does not count), plus the kind the asker picked as a prior
  (weak for "question", the form's default), a bonus for question marks, and the sentiment: a
  negative post is never praise and a positive one never a complaint, and praise asks for
  nothing (a post that also asks, reports or proposes is that). The highest score wins; with no
  evidence at all the asker's kind (or "question") stands.
- `classifier`: the `Classifier` interface a brand may replace and the default
  `RulesClassifier` ("rules-lexicon-v1") putting the above together. A complaint with no clear
  lexicon signal is negative, praise positive (the type says so).
- `segments`: who the author is (troll, detractor, influencer, advocate, active contributor,
  customer, new), first match wins.
- `rules`: the priority rules, `DEFAULT_RULES` or the brand's own; "no_response" rules keep
  praise and troll noise out of the agents' queues.
- `service`: the entry points that store a verdict (`triage_thread`, `triage_followup`,
  `triage_many`); `corrections`: staff corrections (`correct_triage`).

Measured on `data/triage_eval.jsonl` by tests/crowdservice/test_triage.py (accuracy per field
and language is printed); posts the classifier had never been tuned on scored lower than the
whole set (about 0.8 for the type), so treat the printed numbers as an upper bound.
"""

from crowdservice.triage.classifier import Classification, Classifier, RulesClassifier
from crowdservice.triage.corrections import correct_triage, shown_fields
from crowdservice.triage.rules import DEFAULT_RULES, priority_for, validate_rules
from crowdservice.triage.segments import segment_for
from crowdservice.triage.service import (
    needs_response,
    triage_followup,
    triage_many,
    triage_thread,
)

__all__ = [
    "DEFAULT_RULES",
    "Classification",
    "Classifier",
    "RulesClassifier",
    "correct_triage",
    "needs_response",
    "priority_for",
    "segment_for",
    "shown_fields",
    "triage_followup",
    "triage_many",
    "triage_thread",
    "validate_rules",
]
