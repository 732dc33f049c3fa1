"""The most common passwords, refused when a member chooses one (NIST 800-63B 5.1.1.2: "values
obtained from previous breach corpuses").

The bundled list (community/core/data/common-passwords.txt.gz, see its README) is the head of
SecLists' "10 million password list", ordered by frequency, that holds 100,000 passwords
distinct once case and surrounding spaces are ignored (the check ignores them). It is read on
the first check, not on import, and kept as a sorted array of 8-byte BLAKE2b digests (~800 KB)
searched by bisection: 100,000 Python strings would cost every web process several megabytes.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from array import array
from bisect import bisect_left
from importlib import resources

DATA_FILE = ("data", "common-passwords.txt.gz")

# Passwords made famous by publications rather than by breaches, so absent from (or rare in)
# breach-frequency lists, and the first guesses of anyone who has read the same articles:
# xkcd 936 ("correct horse battery staple", "Tr0ub4dor&3"), bash.org's "hunter2", the
# examples of password-advice pages and films.
FAMOUS_PASSWORDS = (
    "correcthorsebatterystaple",
    "correct horse battery staple",
    "correct-horse-battery-staple",
    "Tr0ub4dor&3",
    "Troubador",
    "hunter2",
    "P@ssw0rd",
    "P@ssword1",
    "Passw0rd!",
    "letmein",
    "letmeinplease",
    "trustno1",
    "iloveyou",
    "opensesame",
    "swordfish",
    "joshua",
    "qwertyuiop",
    "1234567890",
    "monkey123",
    "password123!",
    "changeme",
    "changeit",
    "xkcd936",
)

_lock = threading.Lock()
_digests: array[int] | None = None


def _digest(password: str) -> int:
    """Case and surrounding spaces do not make a listed password any less guessable."""
    folded = password.strip().casefold().encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(folded, digest_size=8).digest(), "big")


def _load() -> array[int]:
    global _digests
    with _lock:
        if _digests is None:
            raw = resources.files("community.core").joinpath(*DATA_FILE).read_bytes()
            words = gzip.decompress(raw).decode("utf-8", "replace").splitlines()
            values = {_digest(word) for word in words if word.strip()}
            values.update(_digest(word) for word in FAMOUS_PASSWORDS)
            _digests = array("Q", sorted(values))
        return _digests


def count() -> int:
    """How many distinct (case-folded) passwords the check refuses."""
    return len(_load())


def is_common(password: str) -> bool:
    digests = _load()
    wanted = _digest(password)
    index = bisect_left(digests, wanted)
    return index < len(digests) and digests[index] == wanted
