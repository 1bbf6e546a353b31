"""The marks the harness puts on what it creates, and their exact parsers.

Why exact: `vcrypt sweep` destroys what carries a run's mark. A mark that is only *prefixed*
(an annotation that merely begins with the marker, a run id cut at a space) would let sweep touch
a lab VM such as `prod-db-01` whose note happens to start with the marker text. So a mark is
accepted only when the whole text matches, and run ids are restricted to a safe charset.

    VM annotation:  "vcrypt-harness run=<run-id>"  or  "vcrypt-harness run=<run-id> test=<test-id>"
    key provider:   "<name_prefix><run-id>-<worker>-<n>-<label>"   (worker: main | gw<N>)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from harness.run.runids import RUN_ID_PATTERN, RunIdError, validate_run_id

MARKER = "vcrypt-harness"
TEST_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_RUN_ID = re.compile(RUN_ID_PATTERN)
_ANNOTATION = re.compile(rf"{MARKER} run=(?P<run>{RUN_ID_PATTERN})(?: test=(?P<test>{TEST_ID_PATTERN}))?")
_PROVIDER_TAIL = r"-(?:main|gw\d{1,4})-\d{1,9}-[A-Za-z0-9_.-]{1,80}"


class BadRunId(RunIdError):
    """A run id outside the safe charset: it could not be marked or swept exactly."""


def valid_run_id(run_id: str | None) -> bool:
    try:
        return bool(validate_run_id(run_id))  # type: ignore[arg-type]
    except RunIdError:
        return False


def check_run_id(run_id: str) -> str:
    """The run id itself, or BadRunId naming the rule it breaks (harness/run/runids.py decides)."""
    try:
        return validate_run_id(run_id)
    except RunIdError as err:
        raise BadRunId(str(err)) from None


@dataclass(frozen=True)
class Mark:
    run_id: str
    test_id: str | None


def annotation(run_id: str, test_id: str = "") -> str:
    """The annotation every created VM carries (refuses ids it could not parse back exactly)."""
    check_run_id(run_id)
    if test_id and not re.fullmatch(TEST_ID_PATTERN, test_id):
        raise ValueError(f"test id {test_id!r} cannot be put in a marker")
    return f"{MARKER} run={run_id}" + (f" test={test_id}" if test_id else "")


def parse_annotation(text: str | None) -> Mark | None:
    """The mark of a whole annotation, or None when the text is anything but exactly a marker."""
    match = _ANNOTATION.fullmatch(text or "")
    return Mark(match["run"], match["test"]) if match else None


def provider_id(prefix: str, run_id: str, worker: str, label: str, n: int = 0) -> str:
    """A key provider id that says which run registered it (sweep checks it with `is_run_provider`)."""
    return f"{prefix}{check_run_id(run_id)}-{worker}-{n}-{label}"


def is_run_provider(candidate: str, prefix: str, run_id: str) -> bool:
    """True only when `candidate` is exactly a provider id this run's harness would have made."""
    if not valid_run_id(run_id) or not candidate:
        return False
    return re.fullmatch(re.escape(prefix) + re.escape(run_id) + _PROVIDER_TAIL, candidate) is not None
