"""Overnight runs: serve the batch flow as a Prefect deployment with a cron or watch schedule.

`flow.serve` (a long-running runner process beside a Prefect server) rather than a work pool:
the runner needs no extra infrastructure (no worker, no image, no storage block) and runs the
flow in-process with the project's own environment, where the models and Ray already are. A
work pool pays off only for running on infrastructure the runner's host does not reach.

Runs never overlap: the deployment has a concurrency limit of one; a run that comes due while
the previous one is still going is cancelled (cron) — the next one resumes where it left off,
because runs are idempotent. Watch mode is the same flow on a short interval: each run masters
only what is new.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

from flows.restore_batch import restore_batch


class ScheduleError(RuntimeError):
    pass


def deployment_name(scans_dir: str, recipe: str) -> str:
    leaf = os.path.basename(os.path.normpath(scans_dir)) or "scans"
    return f"{leaf}-{recipe}"


def serve_batch(
    scans_dir: str, *, recipe: str = "archival", cron: str | None = None, watch_minutes: float | None = None,
    name: str | None = None, settings: dict[str, Any] | None = None, scale: float | None = None,
    long_edge: int | None = None, only_new: bool = True, metadata: str | None = None,
) -> None:
    """Register the deployment and run its schedule until stopped (Ctrl-C / SIGTERM).

    only_new (the default): a scheduled run masters scans that have no master yet, so a software
    upgrade or a new preset version does not re-master the whole archive overnight.

    metadata: the item spreadsheet every run reads (absolute path; re-read each run, so rows added
    for tonight's new scans count)."""
    if not os.environ.get("PREFECT_API_URL"):
        raise ScheduleError(
            "schedules need a Prefect server: start one (`prefect server start`, or infra/compose.yaml) and "
            "set PREFECT_API_URL, e.g. http://127.0.0.1:4200/api"
        )
    if (cron is None) == (watch_minutes is None):
        raise ScheduleError("give --cron or --watch MINUTES (one of them)")
    restore_batch.serve(
        name=name or deployment_name(scans_dir, recipe),
        cron=cron,
        interval=dt.timedelta(minutes=watch_minutes) if watch_minutes else None,
        parameters={"scans_dir": scans_dir, "recipe": recipe, "scale": scale, "long_edge": long_edge,
                    "settings": settings or {}, "only_new": only_new, "metadata": metadata},
        global_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        description=f"restorium: master new scans in {scans_dir} with the {recipe} recipe",
        tags=["restorium"],
        pause_on_shutdown=False,
    )
