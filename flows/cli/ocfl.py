"""`restorium export ocfl ITEM... STORAGE_ROOT`: each item as an OCFL object (scan, master as
its service copy, access copy, PREMIS and item metadata), a new version when its master is
superseded; see tasks/preservation/ocfl_export.py. Registered on the `export` group by
flows/cli/preservation.py (imported from it only inside the command, so no import cycle)."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from flows.cli.console import escape, fail, out, settings_or_fail
from tasks.records.results import ExitCode

if TYPE_CHECKING:
    from tasks.preservation.ocfl_export import OcflReport

Home = Annotated[Optional[Path], typer.Option(help="Archive root (RESTORIUM_HOME).")]
CatalogUrl = Annotated[Optional[str], typer.Option(help="Catalog URL (RESTORIUM_CATALOG_URL).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


def export_ocfl(
    items: Annotated[list[str], typer.Argument(
        help="Items (uuid, identifier or a master/access file), then the STORAGE_ROOT folder.")],
    run: Annotated[Optional[str], typer.Option(
        "--run", help="Also every item of this run (its uuid or first characters).")] = None,
    by: Annotated[Optional[str], typer.Option(
        help="Who adds the versions (their OCFL user name; default: restorium and its version).")] = None,
    address: Annotated[Optional[str], typer.Option(
        help="That user's address: a URI such as mailto:name@example.org or an ORCID iD.")] = None,
    as_json: AsJson = False, home: Home = None, catalog_url: CatalogUrl = None,
) -> None:
    """Write each item as an OCFL 1.1 object (validated by ocfl-py): a new object, a new version
    when its master or record changed, nothing when its head is current. STORAGE_ROOT is created
    when new or empty. Exit 1 when an item failed (the others are done)."""
    from catalog.repository import Catalog
    from config.version import software_agent
    from flows.cli.preservation import resolve_items

    *refs, dest = items
    if not refs and not run:
        fail("give at least one ITEM (or --run) and the STORAGE_ROOT folder")
    if by is not None and not by.strip():
        fail("--by: a name")
    if address is not None and not _URI.fullmatch(address):
        fail(f"--address {address!r}: expected a URI such as mailto:name@example.org")
    export = _export_module()
    cfg = settings_or_fail(home=home, catalog_url=catalog_url)
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        exported = []
        for item_uuid in resolve_items(catalog, refs, run=run):
            exported.append(export.OcflItem(*catalog.item_with_audits(item_uuid)))
    user = export.VersionUser(" ".join((by or software_agent()).split()), address)
    try:
        report = export.export_items(exported, Path(dest), user=user)
    except export.OcflError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps({**asdict(report), "failed": report.failed}))
    else:
        _print(report)
    if report.failed:
        raise typer.Exit(ExitCode.SCANS_FAILED)


def _print(report: OcflReport) -> None:
    for o in report.objects:
        what = {"created": f"[green]{o.version} (new object)[/]", "updated": f"[green]{o.version} added[/]",
                "unchanged": f"unchanged at {o.head}", "failed": "[red]failed[/]"}[o.status]
        detail = f": {escape(o.message)}" if o.status in ("updated", "failed") else ""
        out.print(f"{escape(o.identifier)} ({o.uuid}): {o.object_id} {what}{detail}", highlight=False, soft_wrap=True)
    counts = {s: sum(o.status == s for o in report.objects) for s in ("created", "updated", "unchanged", "failed")}
    out.print(f"storage root {escape(report.storage_root)} ({report.layout}): "
              + ", ".join(f"{n} {s}" for s, n in counts.items()) + "; every object written was validated",
              highlight=False, soft_wrap=True)


def _export_module() -> ModuleType:
    """tasks.preservation.ocfl_export, imported without the side effect of ocfl-py's dependency
    pairtree, whose modules call logging.basicConfig(level=INFO) on import: that would print every
    INFO line of the process (ocfl-py's own included) on stderr."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from tasks.preservation import ocfl_export

    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    return ocfl_export


def register(export_app: typer.Typer) -> None:
    export_app.command("ocfl")(export_ocfl)
