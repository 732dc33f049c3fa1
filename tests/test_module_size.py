"""No module of the packages grows past 500 lines: past that a module holds more than one thing
and is split along its seams (issue 13). Migrations are history, not design, and are left out."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("community", "kb", "moderation", "crowdservice")
MAX_LINES = 500


def _line_count(path: Path) -> int:
    with path.open(encoding="utf-8") as source:
        return sum(1 for _line in source)


def modules_over(limit: int) -> dict[str, int]:
    """Each module over `limit` lines, by its path from the project root."""
    over: dict[str, int] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.relative_to(ROOT).parts:
                continue
            lines = _line_count(path)
            if lines > limit:
                over[path.relative_to(ROOT).as_posix()] = lines
    return over


def test_every_package_has_modules_to_measure() -> None:
    # Guards the size check itself: a moved package would otherwise pass with nothing to count.
    for package in PACKAGES:
        assert any((ROOT / package).rglob("*.py")), package


def test_no_module_is_longer_than_500_lines() -> None:
    over = modules_over(MAX_LINES)
    listing = "\n".join(f"  {path}: {lines} lines" for path, lines in sorted(over.items()))
    assert not over, f"split these along their seams (at most {MAX_LINES} lines):\n{listing}"
