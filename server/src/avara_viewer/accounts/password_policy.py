"""What makes a new password too easy to guess: one of the 10,000 most common passwords, one
character repeated, or a simple run or repetition ("abcdef…", "987654…", "abcabc…").

The list ships with the package (common_passwords.txt, where it came from is in its header)
and is read once; nothing is looked up over the network.
"""

from __future__ import annotations

import functools
import itertools
from importlib import resources

_LIST = "common_passwords.txt"
# A repeated unit this short ("abab…", "123123…") is as guessable as the unit itself.
_MAX_REPEATED_UNIT = 4


@functools.cache
def common_passwords() -> frozenset[str]:
    text = resources.files(__package__).joinpath(_LIST).read_text(encoding="utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def guessable_reason(password: str) -> str | None:
    """Why `password` is too easy to guess, as a sentence for the form, or None."""
    lowered = password.lower()
    if lowered in common_passwords():
        return "This is one of the most common passwords; choose another."
    if len(set(lowered)) == 1:
        return "Do not use one character repeated."
    if _is_run(lowered):
        return "Do not use a simple sequence of letters or digits."
    if _is_repetition(lowered):
        return "Do not repeat a short pattern."
    return None


def _is_run(text: str) -> bool:
    """Every character one code point after (or before) the previous: abcdef, 654321."""
    steps = {ord(b) - ord(a) for a, b in itertools.pairwise(text)}
    return len(text) > 1 and (steps == {1} or steps == {-1})


def _is_repetition(text: str) -> bool:
    for size in range(1, min(_MAX_REPEATED_UNIT, len(text) // 2) + 1):
        unit = text[:size]
        if len(text) % size == 0 and unit * (len(text) // size) == text:
            return True
    return False
