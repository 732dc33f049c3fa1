"""Spotting personal data copied from a thread into an article, so an agent can redact it.

Transparent rules rather than a model: e-mail addresses, phone numbers, order/account/ticket
numbers, card-like numbers, and names of private people (the thread's participants by display
name and username, and capitalised names after a greeting or sign-off such as "Hi Maria" or
"Thanks, John"). It errs on the side of pointing things out: an agent decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from community.core.i18n import gettext as _


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # email, phone, account, card, name
    text: str
    start: int
    end: int


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# Digits with at most one space, dash or bracket between them; dots are left out so versions
# (3.12.4) and addresses (192.168.1.1) are not mistaken for phone numbers.
PHONE = re.compile(r"(?<![\w/.])(?:\+|00)?\(?\d(?:[ ()-]{0,2}\d){8,14}(?![\w/])")
ACCOUNT = re.compile(
    r"\b(?:order|account|acct|customer|invoice|ticket|case|contract|pedido|cuenta|cliente|"
    r"factura|contrato)(?:\s+(?:no\.?|number|n[úu]mero|nº|#))?\s*[:#]?\s*([A-Z0-9][A-Z0-9-]{4,})",
    re.IGNORECASE,
)
CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
GREETING_NAME = re.compile(
    r"\b(?i:hi|hello|hey|dear|thanks|thank you|cheers|regards|hola|gracias|saludos|estimad[oa])"
    r",?\s+([A-ZÁÉÍÓÚÑ][a-záéíóúñ]+(?:\s+[A-ZÁÉÍÓÚÑ][a-záéíóúñ]+)?)",
)
REPLACEMENTS = {
    "email": "[e-mail removed]",
    "phone": "[phone number removed]",
    "account": "[number removed]",
    "card": "[card number removed]",
    "name": "[name removed]",
}


def _digits(text: str) -> int:
    return sum(ch.isdigit() for ch in text)


def _luhn_valid(text: str) -> bool:
    """Payment card numbers carry a Luhn check digit; most other long numbers do not."""
    digits = [int(ch) for ch in text if ch.isdigit()]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def find_personal_data(text: str, known_names: Iterable[str] = ()) -> list[Finding]:
    findings: list[Finding] = []
    for match in EMAIL.finditer(text):
        findings.append(Finding("email", match.group(0), match.start(), match.end()))
    for match in CARD.finditer(text):
        if 13 <= _digits(match.group(0)) <= 19 and _luhn_valid(match.group(0)):
            findings.append(Finding("card", match.group(0).strip(), match.start(), match.end()))
    for match in PHONE.finditer(text):
        if 9 <= _digits(match.group(0)) <= 15:
            findings.append(Finding("phone", match.group(0), match.start(), match.end()))
    for match in ACCOUNT.finditer(text):
        if any(ch.isdigit() for ch in match.group(1)):
            findings.append(Finding("account", match.group(1), match.start(1), match.end(1)))
    for match in GREETING_NAME.finditer(text):
        findings.append(Finding("name", match.group(1), match.start(1), match.end(1)))
    for name in {n.strip() for n in known_names if len(n.strip()) >= 3}:
        for match in re.finditer(rf"(?<!\w)@?{re.escape(name)}(?!\w)", text, re.IGNORECASE):
            findings.append(Finding("name", match.group(0), match.start(), match.end()))
    return _without_overlaps(findings)


def _without_overlaps(findings: list[Finding]) -> list[Finding]:
    """Keep the longest finding where several overlap (a card number is not also a phone)."""
    kept: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.start, -(f.end - f.start))):
        if kept and finding.start < kept[-1].end:
            continue
        kept.append(finding)
    return kept


def redact(text: str, findings: list[Finding]) -> str:
    result = text
    for finding in sorted(findings, key=lambda f: f.start, reverse=True):
        result = result[: finding.start] + REPLACEMENTS[finding.kind] + result[finding.end :]
    return result


def describe(finding: Finding) -> str:
    labels = {
        "email": _("e-mail address"),
        "phone": _("phone number"),
        "account": _("order or account number"),
        "card": _("card number"),
        "name": _("name of a person"),
    }
    return labels[finding.kind]
