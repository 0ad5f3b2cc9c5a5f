"""How common a name's words are in the wider world, not just in this supplier list.

A name made of everyday words ("SAFE HARBOR", "NEW HORIZONS", "THUNDER") is carried by many
organisations that no supplier list holds, so sharing it with one supplier is weak evidence; an
invented word ("QUORVANTIX") is strong evidence. English word frequencies come from
``wordfreq`` (shipped with the package, no download), as Zipf values: log10 of a word's
frequency per billion words, 0 for unseen words, about 7 for "the".
"""

from __future__ import annotations

import functools
import math

from wordfreq import get_frequency_dict

from domain.census_names import name_frequencies

# Zipf value from which a word is as common as words get for the purpose of naming things.
_COMMON_ZIPF = 6.0
# A word this frequent is a real word: a one-letter change to another real word is another
# name (MILL / MALL), not a typo.
REAL_WORD_ZIPF = 3.0
# A surname (or first name) at least this common (percent of the US population in the 1990
# census: one person in 10,000, some 25,000 people) is carried by many people and by the firms
# named after them.
COMMON_SURNAME_SHARE = 0.01
# Words that only join the others carry no naming information.
JOINERS = frozenset("OF THE AND FOR A AN AT ON IN TO DE LA EL".split())


@functools.cache
def _frequencies() -> dict[str, float]:
    return get_frequency_dict("en")


@functools.lru_cache(maxsize=1 << 17)
def zipf(token: str) -> float:
    """Zipf frequency of an upper-case token in English (0 when unseen)."""
    frequency = _frequencies().get(token.lower(), 0.0)
    return max(0.0, math.log10(frequency * 1e9)) if frequency else 0.0


def warm_up() -> None:
    _frequencies()


def is_real_word(token: str) -> bool:
    return len(token) >= 3 and token.isalpha() and zipf(token) >= REAL_WORD_ZIPF


def is_common_surname(token: str) -> bool:
    return name_frequencies().last_frequency(token) >= COMMON_SURNAME_SHARE


def is_common_first_name(token: str) -> bool:
    share = name_frequencies().first_frequency(token)
    return share >= COMMON_SURNAME_SHARE and _a_name_more_than_a_word(token, share)


def is_surname(token: str) -> bool:
    """A census surname that is a name rather than an everyday word: CLARK, JONES, HILL, not
    CHURCH, POWER, BANK, PARK or SONS (census surnames too, but far more often words)."""
    share = name_frequencies().last_frequency(token)
    return share > 0.0 and _a_name_more_than_a_word(token, share)


# People carry a name this many times more often than English text uses it as a word ...
NAME_OVER_WORD = 10.0
# ... or at least this share (percent): WHITE, YOUNG, BILL are names whatever else they are.
NAME_WHATEVER_THE_WORD_SHARE = 0.05


def _a_name_more_than_a_word(token: str, share_percent: float) -> bool:
    word = zipf(token)
    return (
        not word
        or share_percent >= NAME_WHATEVER_THE_WORD_SHARE
        or share_percent / 100.0 >= NAME_OVER_WORD * 10.0 ** (word - 9.0)
    )


def commonness(tokens: tuple[str, ...] | list[str], distinctive: frozenset[str] = frozenset()) -> float:
    """0 (an invented word somewhere in the name) … 1 (every word an everyday one): the rarest
    naming word decides, since one distinctive word is enough to single a name out. Words in
    ``distinctive`` count as rare whatever their frequency."""
    naming = [token for token in tokens if token not in JOINERS]
    if not naming:
        return 1.0
    return min(0.0 if token in distinctive else min(zipf(token), _COMMON_ZIPF) for token in naming) / _COMMON_ZIPF
