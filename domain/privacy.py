"""Payee names of individuals are personal data: what may leave the process, decided here.

* The LLM: under the ``strict`` setting (the default) a name the rules read as possibly a
  person's is not sent to an external LLM; the record goes to review with
  ``PERSONAL_NAME_WITHHELD`` instead. Possibly a person's is every name in which the rules found
  no organisation or government (``organisation_evidence``: a legal form, organisation or
  government words, a known brand, the matched supplier): a low-confidence "business" guessed
  from the shape of the name or from word statistics ("Liqing Zhang", "Arvind") may be a person. Under ``permissive`` (a self-hosted endpoint, or one covered
  by a data-processing agreement) it is sent, and its result and audit event say so.
* Failures: an exception's message can quote the input (pydantic's ``input_value``, a KeyError's
  key, a library's ``repr`` of an argument), so what goes into dead letters and logs is the
  exception's type and where it was raised, never its message.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Literal

from schemas.events import ClassificationBlock

LlmPrivacy = Literal["strict", "permissive"]
# What happened to a possibly personal name that needed the LLM.
LlmDisclosure = Literal["withheld", "disclosed"]

PERSONAL_NAME_WITHHELD = "personal_name_withheld_from_llm"
_ORGANISATIONS = frozenset({"business", "government"})
_REPO_ROOT = Path(__file__).resolve().parent.parent


def possibly_a_person(classification: ClassificationBlock) -> bool:
    """Unless the rules found evidence of an organisation or government, the name may be a person's."""
    return classification.entity_type not in _ORGANISATIONS or not classification.organisation_evidence


def llm_disclosure(classification: ClassificationBlock, mode: LlmPrivacy) -> LlmDisclosure | None:
    """For a record that needs the LLM: None if its name may be sent as it is not possibly a
    person's, else whether the privacy setting withholds or discloses it."""
    if not possibly_a_person(classification):
        return None
    return "withheld" if mode == "strict" else "disclosed"


def error_location(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location, dotted, with the sender's own keys (of ``metadata``) hidden."""
    parts = []
    for index, part in enumerate(loc):
        hidden = index > 0 and loc[index - 1] == "metadata" and isinstance(part, str)
        parts.append("<key>" if hidden else str(part))
    return ".".join(parts) or "<root>"


def _where(frame: traceback.FrameSummary) -> str:
    path = Path(frame.filename).resolve()
    shown = path.relative_to(_REPO_ROOT).as_posix() if _is_ours(path) else path.name
    return f"{shown}:{frame.lineno} in {frame.name}"


def _is_ours(path: Path) -> bool:
    return path.is_relative_to(_REPO_ROOT) and not path.is_relative_to(_REPO_ROOT / ".venv")


def failure_summary(error: BaseException) -> str:
    """The exception's type and where it was raised (the innermost frame, and the innermost
    frame of this project's code when that is another), without its message."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return type(error).__name__
    places = [frames[-1]]
    ours = [frame for frame in frames if _is_ours(Path(frame.filename).resolve())]
    if ours and ours[-1] is not frames[-1]:
        places.append(ours[-1])
    return f"{type(error).__name__} at {', via '.join(_where(frame) for frame in places)}"


def traceback_without_messages(error: BaseException) -> str:
    """A traceback as Python prints it (the chain of causes included), each exception's message
    replaced by a note: frames and source lines say where, and carry no input."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    lines: list[str] = []
    for position, exc in enumerate(reversed(chain)):
        if position:
            lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
        lines.append(f"{type(exc).__module__}.{type(exc).__qualname__}: <message withheld: it can quote input>\n")
    return "".join(lines)
