"""The `restorium` command (Typer + Rich): `app` in app.py holds the run, demo, audit, qa and
models commands and registers the rest: preservation.py (approve, reject, fixity, reproduce,
find, items, export bag), archivematica.py, ocfl.py and iiif.py (export ...), review.py (review,
reprocess), schedule.py. console.py: the two consoles and the one way to fail (exit codes:
tasks.records.results.ExitCode)."""

from flows.cli.app import app, main

__all__ = ["app", "main"]
