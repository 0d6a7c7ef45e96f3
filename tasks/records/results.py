"""The words restorium uses for results, in one place, and the exit codes a scheduler acts on.

String enums: their members equal the plain strings stored in the catalog, the run summary's JSON
and the masters' XMP, so records written before this module existed read the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum, StrEnum


class ScanStatus(StrEnum):
    """What a run did with one file (the run summary's `outcome`, the catalog's run ledger)."""

    MASTERED = "mastered"  # a new master was written
    UNCHANGED = "unchanged"  # its master for this recipe, weights and software exists already
    FAILED = "failed"  # no master: the reason and kind say why
    SKIPPED = "skipped"  # not a scan (never read): a sidecar, a hidden file, a link leading out


class FailureKind(StrEnum):
    """Why a worker could not master a scan, which decides whether the next run tries again."""

    INVALID = "invalid"  # the file itself is bad: the same bytes fail again (not retried)
    REJECTED = "rejected"  # the QA gate failed it against the capture specification: re-scan it
    ERROR = "error"  # processing failed, maybe transiently: the next run retries it


class StepOutcome(StrEnum):
    """The outcome of one provenance event (PREMIS eventOutcome)."""

    SUCCESS = "success"
    WARNING = "warning"  # done, and a person should look (a QA warning, a fidelity-guard flag)
    FAILURE = "failure"


class Verdict(StrEnum):
    """The QA verdict on a scan, worst wins."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"

    @classmethod
    def worst(cls, *verdicts: str) -> Verdict:
        order = list(cls)
        return max((cls(v) for v in verdicts), key=order.index, default=cls.PASS)


class ExitCode(IntEnum):
    """The `restorium` command's exit status."""

    DONE = 0  # every scan mastered, unchanged or skipped (or: the command did what it was asked)
    SCANS_FAILED = 1  # the batch finished, some scans failed (the rest are done; reasons in the summary)
    NOT_STARTED = 2  # nothing was done: bad arguments or settings, missing weights, unreachable catalog
    STOPPED = 3  # the run stopped early on purpose (failure budget, full disk); what it did is recorded
    CRASHED = 4  # an unexpected error; what was recorded stays, run again to resume


# The exit code each scan status asks for; a run exits with the highest its scans ask for.
EXIT_FOR_STATUS: Mapping[ScanStatus, ExitCode] = {
    ScanStatus.MASTERED: ExitCode.DONE,
    ScanStatus.UNCHANGED: ExitCode.DONE,
    ScanStatus.SKIPPED: ExitCode.DONE,
    ScanStatus.FAILED: ExitCode.SCANS_FAILED,
}


def run_exit_code(counts: Mapping[str, int], stopped: str | None = None) -> ExitCode:
    """A finished run's exit code from its summary counts (and why it stopped, if it did)."""
    if stopped:
        return ExitCode.STOPPED
    asked = [EXIT_FOR_STATUS[status] for status in ScanStatus if counts.get(status, 0)]
    return max(asked, default=ExitCode.DONE)
