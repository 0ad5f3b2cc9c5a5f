"""US census 1990 first- and last-name frequencies (public domain), read from the `names` package.

The files are parsed lazily on first use and kept for the life of the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class NameFrequencies:
    """Percent of the 1990 population carrying each name (e.g. SMITH -> 1.006)."""

    first: dict[str, float]
    last: dict[str, float]

    def first_frequency(self, token: str) -> float:
        return self.first.get(token, 0.0)

    def last_frequency(self, token: str) -> float:
        return self.last.get(token, 0.0)

    def is_name(self, token: str) -> bool:
        return token in self.first or token in self.last


def _read_frequency_file(file_name: str) -> dict[str, float]:
    frequencies: dict[str, float] = {}
    with resources.files("names").joinpath(file_name).open(encoding="ascii") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) >= 2:
                # The male and female first-name files overlap (e.g. DALLAS): keep the larger share.
                frequencies[fields[0]] = max(frequencies.get(fields[0], 0.0), float(fields[1]))
    return frequencies


@cache
def name_frequencies() -> NameFrequencies:
    first = _read_frequency_file("dist.male.first")
    for name, frequency in _read_frequency_file("dist.female.first").items():
        first[name] = max(first.get(name, 0.0), frequency)
    return NameFrequencies(first=first, last=_read_frequency_file("dist.all.last"))
