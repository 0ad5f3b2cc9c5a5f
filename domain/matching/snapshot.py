"""Index snapshots: a pickle of the derived structures, so a restart re-normalises nothing.

A snapshot is a trusted, worker-local file. One written by other normalisation or matching
code is refused (``ValueError``) and the index is rebuilt from the supplier topic instead.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

from domain.matching.features import HolderKind, Location
from domain.matching.index import Entry, SupplierIndex, gc_paused, shared_kind, shared_street
from domain.suppliers import SUPPLIER_FIELDS, Supplier

SNAPSHOT_FORMAT = 4  # 3: entries carry their street key; 4: name holders, spaceless names and deletions as tuples
_DOMAIN = Path(__file__).resolve().parents[1]
# Snapshots hold normalised names, holder kinds and street keys: the code that derived them is part of the format.
_DERIVATION_DIGEST = hashlib.blake2b(
    b"".join(
        path.read_bytes()
        for path in (
            _DOMAIN / "normalize.py", _DOMAIN / "vocabulary.py", _DOMAIN / "suppliers.py", _DOMAIN / "address.py",
            *sorted((_DOMAIN / "matching").glob("*.py")),
        )
    ),
    digest_size=8,
).hexdigest()


def save(index: SupplierIndex, path: str | Path) -> None:
    state = {
        "format": SNAPSHOT_FORMAT,
        "derivation": _DERIVATION_DIGEST,
        "rows": [
            (
                tuple(getattr(entry.supplier, name) for name in SUPPLIER_FIELDS),
                entry.names,
                tuple(entry.location),
                tuple(entry.kind),
                entry.digest,
                entry.street,
            )
            for entry in index.entries.values()
        ],
        "name_suppliers": index.name_suppliers,
        "compact_names": index.compact_names,
        "postings": index.postings,
        "deletions": index.deletion_index,
        "version": index.version,
    }
    with Path(path).open("wb") as handle:
        pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)


def load(path: str | Path, match_threshold: float = 0.85, ambiguity_margin: float = 0.05) -> SupplierIndex:
    """A new index from a snapshot written by ``save``."""
    return restore(SupplierIndex(match_threshold=match_threshold, ambiguity_margin=ambiguity_margin), path)


def restore(index: SupplierIndex, path: str | Path) -> SupplierIndex:
    """Fill an empty index from a snapshot, keeping its thresholds and weights; returns it.

    Raises ``ValueError`` for a snapshot of another format or derivation code (rebuild).
    """
    if index.entries:
        raise ValueError("restore needs an empty index")
    with gc_paused():
        with Path(path).open("rb") as handle:
            state = pickle.load(handle)  # noqa: S301 - the worker's own snapshot
        if state.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"unsupported snapshot format {state.get('format')!r}")
        if state.get("derivation") != _DERIVATION_DIGEST:
            raise ValueError("snapshot written by other normalisation code")
        for values, names, place, kind, digest, street in state["rows"]:
            supplier = Supplier(*values)
            index.entries[supplier.supplier_id] = Entry(
                supplier, names, Location(*place), shared_kind(HolderKind(*kind)), digest, shared_street(street)
            )
    index.name_suppliers = state["name_suppliers"]
    index.compact_names = state["compact_names"]
    index.postings = state["postings"]
    index.deletion_index = state["deletions"]
    index.version = state["version"]
    return index
