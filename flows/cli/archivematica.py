"""`restorium export archivematica [ITEM...] [--run RUN] DEST [--bag]`: an Archivematica standard
transfer of items (layout and sources: tasks/preservation/archivematica.py), registered on the
`export` group by flows.cli.preservation.

Each item goes with its scan, its newest master (as Archivematica's service copy) and that
master's access copy; the audit records of what goes and the reports of the runs that made the
masters go as submission documentation. Exit 0 done, 2 nothing written (bad arguments, unknown
item or run, a file missing or changed: DEST is left as it was).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from flows.cli.console import escape, fail, out, settings_or_fail

Home = Annotated[Optional[Path], typer.Option(help="Archive root (RESTORIUM_HOME).")]
CatalogUrl = Annotated[Optional[str], typer.Option(help="Catalog URL (RESTORIUM_CATALOG_URL).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def export_archivematica(
    items: Annotated[list[str], typer.Argument(
        help="Items (uuid, identifier or a master/access file), then DEST; with --run, DEST alone.")],
    run: Annotated[Optional[str], typer.Option(
        "--run", help="Also every item of this run (its uuid or first characters).")] = None,
    bag: Annotated[bool, typer.Option("--bag", help="Make it a BagIt bag (an Archivematica bag transfer).")] = False,
    as_json: AsJson = False, home: Home = None, catalog_url: CatalogUrl = None,
) -> None:
    """Write an Archivematica standard transfer: objects/ (the scans, byte for byte), objects/service/
    (the newest masters: derivatives of the scans), objects/access/, metadata/metadata.csv,
    premis.xml, checksum.sha256 and submission documentation; DEST must be new or empty."""
    from catalog.repository import Catalog
    from flows.cli.preservation import resolve_items
    from tasks.preservation.archivematica import TransferError, TransferItem, choose_files, write_transfer

    *refs, dest = items
    if not run and not refs:
        fail("give at least one ITEM (or --run RUN) and the DEST folder")
    cfg = settings_or_fail(home=home, catalog_url=catalog_url)
    try:
        with Catalog.open(cfg.resolved_catalog_url) as catalog:
            uuids = resolve_items(catalog, refs, run=run)
            if not uuids:
                fail(f"--run {run}: the run recorded no item")
            transfer_items: list[TransferItem] = []
            runs: list[str] = []
            for item_uuid in uuids:
                record = catalog.item_record(item_uuid)
                assert record is not None  # the uuids came from the catalog
                _, master, access, _ = choose_files(record)
                audits: dict[str, dict[str, Any]] = {}
                for f in (master, access):
                    audit = catalog.audit(master_path=f.path, sha256=f.sha256) if f else None
                    if f and audit is not None:
                        audits[f.uuid] = audit.to_dict()
                if master and master.run_uuid and master.run_uuid not in runs:
                    runs.append(master.run_uuid)
                transfer_items.append(TransferItem(record, audits))
        # The reports of the runs that made the masters that go.
        docs = [p for r in runs for p in (cfg.reports_dir / f"run-{r}.json", cfg.reports_dir / f"run-{r}.html")
                if p.is_file()]
        report = write_transfer(transfer_items, Path(dest), bag=bag, submission_docs=docs)
    except TransferError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(vars(report)))
        return
    for item in report.items:
        what = ", ".join(p for p in (item["scan"], item["service"], item["access"]) if p)
        out.print(escape(f"{item['identifier']} ({item['uuid']}): {what}"), highlight=False, soft_wrap=True)
    for note in report.notes:
        out.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    kind = "bagged Archivematica transfer" if report.bag else "Archivematica standard transfer"
    out.print(escape(f"{kind} {report.path}: {report.object_files} files under objects/, "
                     f"{report.object_bytes} bytes"), highlight=False, soft_wrap=True)


def register(export_app: typer.Typer) -> None:
    export_app.command("archivematica")(export_archivematica)
