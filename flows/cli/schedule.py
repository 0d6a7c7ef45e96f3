"""`restorium schedule`: serve the batch flow on a cron or watch schedule (see flows/schedule.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def register(app: typer.Typer, fail, settings) -> None:
    @app.command()
    def schedule(
        scans_dir: Annotated[Path, typer.Argument(help="Folder of scans (searched recursively).")],
        cron: Annotated[Optional[str], typer.Option(help='Cron schedule, e.g. "0 1 * * *" (01:00 nightly).')] = None,
        watch: Annotated[Optional[float], typer.Option(help="Watch mode: run every N minutes.")] = None,
        recipe: Annotated[str, typer.Option(help="Preset name or recipe .yaml file.")] = "archival",
        name: Annotated[Optional[str], typer.Option(help="Deployment name (default: folder-recipe).")] = None,
        home: Annotated[Optional[Path], typer.Option(help="Archive root (RESTORIUM_HOME).")] = None,
        catalog_url: Annotated[Optional[str], typer.Option(help="Catalog URL (RESTORIUM_CATALOG_URL).")] = None,
        only_new: Annotated[bool, typer.Option(
            "--only-new/--remaster", help="Master only scans without a master (default), or also re-master "
            "scans whose master an older recipe, weights or version made.")] = True,
        metadata: Annotated[Optional[Path], typer.Option(
            help="Item spreadsheet (CSV: file, identifier, title, date, creator, rights, width, height, unit, "
            "dc.*), re-read by every run.")] = None,
    ) -> None:
        """Register a Prefect deployment and run it on schedule until stopped (needs PREFECT_API_URL).

        Runs never overlap; each run masters only what is new, so a watch schedule picks up new scans
        (and an upgrade does not re-master the archive unless --remaster says so)."""
        from flows.schedule import ScheduleError, serve_batch

        if not scans_dir.is_dir():
            fail(f"{scans_dir}: not a folder")
        cfg = settings(home=home, catalog_url=catalog_url)
        if metadata is not None:
            from flows.run_plan import RunPlanError, plan_run

            try:  # a malformed sheet is refused now, not at 01:00
                plan_run(cfg, recipe, metadata=metadata)
            except RunPlanError as exc:
                fail(str(exc))
        try:
            serve_batch(str(scans_dir.resolve()), recipe=recipe, cron=cron, watch_minutes=watch, name=name,
                        settings=cfg.model_dump(mode="json", exclude_unset=True), only_new=only_new,
                        metadata=str(metadata.resolve()) if metadata else None)
        except ScheduleError as exc:
            fail(str(exc))
