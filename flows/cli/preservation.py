"""Preservation commands of `restorium` (registered on the app by flows/cli/app.py):

    approve MASTER --by NAME [--comment TEXT]      a person's approval (an event, append-only)
    reject MASTER --by NAME --comment TEXT         a person's rejection
    fixity [--older-than 180d] [--json]            re-hash files, one event per file, one summary
    reproduce MASTER [--original P] [--keep DIR]   re-run the recorded recipe, compare pixels
    find [--model N] [--weights SHA] [--recipe-hash H] [--since DATE] [--json]
    items [--json]                                 identifier, title, scans, masters, decisions
    export bag ITEM... DEST                        a validated BagIt bag of items
    export archivematica (ITEM...|--run R) DEST [--bag]   an Archivematica standard transfer
    export ocfl ITEM... ROOT                       each item an OCFL object, a version per change
    export iiif (ITEM...|--run R) DEST [--base-url U]     a static IIIF site (tiles, manifests)

Exit codes: 0 done (and everything checked out); 1 done, but something failed (a fixity
mismatch, a reproduction that differs); 2 nothing done (bad arguments, unknown master ...).
This module never imports flows.cli (which imports it); the consoles live in flows.cli.console.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from flows.cli import archivematica as cli_archivematica
from flows.cli import iiif as cli_iiif
from flows.cli import ocfl as cli_ocfl
from flows.cli.console import err, escape, fail, out, settings_or_fail
from tasks.records.results import ExitCode

if TYPE_CHECKING:
    from catalog.repository import Catalog

Home = Annotated[Optional[Path], typer.Option(help="Archive root (RESTORIUM_HOME).")]
CatalogUrl = Annotated[Optional[str], typer.Option(help="Catalog URL (RESTORIUM_CATALOG_URL).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _line(text: str) -> None:
    out.print(text, highlight=False, soft_wrap=True)


# --- audit --format premis|json (called by flows.cli.audit) ------------------------------------

def item_export(master: Path, fmt: str, cfg: Any) -> None:
    """Print the PREMIS XML (validated) or the same record as JSON for the master's item."""
    from catalog.repository import Catalog
    from tasks.files.atomic import sha256_file
    from tasks.preservation import premis

    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        ref = catalog.file_ref(path=str(master.resolve()), sha256=sha256_file(master))
        if ref is None:
            fail(f"{master}: not in the catalog {cfg.resolved_catalog_url}")
        record = catalog.item_record(ref.item_uuid)
    assert record is not None  # a catalogued file belongs to an item
    if fmt == "json":
        out.print_json(json.dumps(record.to_dict()))
        return
    xml = premis.to_xml(record)
    try:
        premis.validate(xml, name=f"PREMIS of item {record.uuid}")
    except premis.PremisError as exc:  # a bug, not a user error: say so loudly
        fail(str(exc), code=ExitCode.SCANS_FAILED)
    typer.echo(xml.decode(), nl=False)


def print_later_events(events: list[Any]) -> None:
    """Decisions, fixity checks and reproductions on a file, after its making (audit's text)."""
    if not events:
        return
    _line("[bold]since[/]")
    for e in events:
        people = ", ".join(a.name for a in e.agents if a.kind == "person")
        who = f" by {people}" if people else ""
        color = "red" if e.outcome == "failure" else ("yellow" if e.outcome == "warning" else "green")
        _line(f"  {e.when}  {e.type}{who}  [{color}]{e.outcome}[/]  {e.detail}")


# --- approve / reject ----------------------------------------------------------------------------

def _decide(decision: str, master: Path, by: str, comment: str, home: Path | None, catalog_url: str | None) -> None:
    from catalog.repository import Catalog
    from flows.review.actions import record_decision
    from tasks.files.atomic import sha256_file

    if not master.is_file():
        fail(f"{master}: no such file")
    cfg = settings_or_fail(home=home, catalog_url=catalog_url)
    actual = sha256_file(master)
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        ref = catalog.file_ref(path=str(master.resolve()), sha256=actual, roles=("master",))
        if ref is None:
            fail(f"{master}: not a master in the catalog {cfg.resolved_catalog_url}")
        if ref.sha256 != actual:
            fail(f"{master}: sha256 {actual} differs from the catalogued {ref.sha256}: the file changed since "
                 "it was made; a decision about other bytes would not hold (run `restorium fixity`)")
        try:
            step = record_decision(catalog, ref.uuid, actual, decision, by=by, comment=comment)
        except ValueError as exc:
            fail(str(exc))
    _line(f"{master}: {decision} by {step.parameters['by']} at {step.when} (event {step.event_uuid})")


def approve(
    master: Annotated[Path, typer.Argument(help="The master file approved.")],
    by: Annotated[str, typer.Option("--by", help="Who approves (a person's name).")],
    comment: Annotated[str, typer.Option(help="Why, or any remark.")] = "",
    home: Home = None, catalog_url: CatalogUrl = None,
) -> None:
    """Record a person's approval of a master (an event; a later decision supersedes it)."""
    _decide("approved", master, by, comment, home, catalog_url)


def reject(
    master: Annotated[Path, typer.Argument(help="The master file rejected.")],
    by: Annotated[str, typer.Option("--by", help="Who rejects (a person's name).")],
    comment: Annotated[str, typer.Option(help="Why it is rejected (required).")],
    home: Home = None, catalog_url: CatalogUrl = None,
) -> None:
    """Record a person's rejection of a master, with the reason."""
    _decide("rejected", master, by, comment, home, catalog_url)


# --- fixity ----------------------------------------------------------------------------------------

class _Bar:
    """The flow's progress on stderr (ok/failed counts)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("[red]{task.fields[failed]} failed[/]"), TimeElapsedColumn(),
                                 console=err, transient=True)
        self.task: TaskID | None = None
        self.failed = 0

    def start(self, total: int, description: str) -> None:
        self.progress.start()
        self.task = self.progress.add_task(description, total=total, failed=0)

    def advance(self, path: str, outcome: str) -> None:
        self.failed += outcome == "failed"
        if self.task is not None:
            self.progress.update(self.task, advance=1, failed=self.failed)

    def note(self, message: str) -> None:
        err.print(f"[dim]{escape(message)}[/]", highlight=False)

    def stop(self) -> None:
        self.progress.stop()


def fixity(
    older_than: Annotated[Optional[str], typer.Option(
        help="Skip files whose last successful check is newer than this (e.g. 180d, 12h); default: check all.")] = None,
    as_json: AsJson = False, home: Home = None, catalog_url: CatalogUrl = None,
) -> None:
    """Re-hash originals, masters, access copies and review sheets; record a fixity-check event per
    file; report changed and missing files. Exit 1 when any check failed."""
    from flows.progress import set_reporter
    from tasks.preservation.fixity import parse_age

    if older_than:
        try:
            parse_age(older_than)
        except ValueError as exc:
            fail(str(exc))
    cfg = settings_or_fail(home=home, catalog_url=catalog_url)
    from flows.fixity import fixity_check

    bar = _Bar()
    set_reporter(bar)
    try:
        report = fixity_check(older_than=older_than, settings=cfg.model_dump(mode="json", exclude_unset=True))
    finally:
        bar.stop()
        set_reporter(None)
    if as_json:
        out.print_json(json.dumps(report))
    else:
        _print_fixity(report)
    raise typer.Exit(ExitCode.SCANS_FAILED if report["failed"] else ExitCode.DONE)


def _print_fixity(report: dict) -> None:
    if report["problems"]:
        table = Table("role", "status", "expected sha256", "found", "file", title="fixity problems")
        table.columns[-1].overflow = "fold"
        style = {"mismatch": "red", "missing": "red", "unreadable": "yellow"}
        for p in report["problems"]:
            table.add_row(p["role"], f"[{style.get(p['status'], 'red')}]{p['status']}[/]",
                          p["expected"][:16], (p["actual"] or "-")[:16], escape(p["path"]))
        out.print(table)
    _line(f"{report['checked']} of {report['files']} files checked ({report['skipped']} checked recently): "
          f"{report['ok']} ok, {report['mismatch']} changed, {report['missing']} missing, "
          f"{report['unreadable']} unreadable in {report['seconds']:.1f} s (check {report['check']})")


# --- reproduce -----------------------------------------------------------------------------------

def reproduce(
    master: Annotated[Path, typer.Argument(help="The master to reproduce.")],
    original: Annotated[Optional[Path], typer.Option(help="The original, if it moved (its sha256 must match).")] = None,
    keep: Annotated[Optional[Path], typer.Option(help="Keep the reproduced master in this folder.")] = None,
    models_dir: Annotated[Optional[Path], typer.Option(help="Weights folder (RESTORIUM_MODELS_DIR).")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda or auto (RESTORIUM_DEVICE).")] = None,
    as_json: AsJson = False, home: Home = None, catalog_url: CatalogUrl = None,
) -> None:
    """Re-run the master's recorded recipe with its recorded weights on its original and compare
    pixels: bit-identical, or how far (PSNR, max difference). Exit 1 when they differ."""
    from flows.reproduce import ReproduceRefused
    from flows.reproduce import reproduce as run_reproduce

    cfg = settings_or_fail(home=home, catalog_url=catalog_url, models_dir=models_dir, device=device)
    if keep is not None and keep.resolve().is_relative_to(cfg.home):
        fail(f"--keep {keep}: inside the archive {cfg.home}; reproductions never go into the archive")
    try:
        report = run_reproduce(master, cfg, original=original, keep=keep)
    except ReproduceRefused as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(report))
    else:
        cmp = report["comparison"]
        verdict = ("[green]bit-identical pixels[/]" if report["identical"] else
                   f"[red]differs[/]: PSNR {cmp.get('psnr_db')} dB, max |difference| {cmp.get('max_abs_diff')} "
                   f"of {cmp.get('peak')}, {cmp.get('differing_samples')} samples" if cmp.get("comparable")
                   else f"[red]differs[/]: {cmp.get('reason')}")
        _line(f"[bold]master[/]      {report['master']}\n[bold]original[/]    {report['original']}")
        _line(f"[bold]recipe[/]      {report['recipe']['name']} {report['recipe']['hash']}")
        for name, sha in report["models"].items():
            _line(f"[bold]model[/]       {name} {sha}")
        _line(f"[bold]device[/]      {report['device']} (recorded: {report['recorded_device']}), "
              f"threads {report['threads'] or 'default'}")
        _line(f"[bold]result[/]      {verdict}")
        if not report["archived_matches_record"]:
            _line("[red]the archived master's pixels no longer match their recorded digest[/]")
        if report["kept"]:
            _line(f"[bold]kept[/]        {report['kept']}")
    raise typer.Exit(ExitCode.DONE if report["identical"] else ExitCode.SCANS_FAILED)


# --- find --------------------------------------------------------------------------------------------

def _when(text: str | None, option: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r}: expected a date or time like 2026-11-01 or 2026-11-01T12:00Z")
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def find(
    model: Annotated[Optional[str], typer.Option(help="Model name (e.g. realesr-general-x4v3).")] = None,
    weights: Annotated[Optional[str], typer.Option(help="Weights sha256 (or a prefix).")] = None,
    recipe_hash: Annotated[Optional[str], typer.Option(help="Recipe hash (or a prefix).")] = None,
    since: Annotated[Optional[str], typer.Option(help="Masters made at or after this date/time (UTC).")] = None,
    until: Annotated[Optional[str], typer.Option(help="Masters made before this date/time (UTC).")] = None,
    limit: Annotated[Optional[int], typer.Option(help="At most this many (newest first).")] = None,
    as_json: AsJson = False, home: Home = None, catalog_url: CatalogUrl = None,
) -> None:
    """List masters made with given settings (e.g. every master of a model version found faulty)."""
    from catalog.repository import Catalog

    if not any((model, weights, recipe_hash, since, until)):
        fail("say what to look for: --model, --weights, --recipe-hash, --since and/or --until")
    cfg = settings_or_fail(home=home, catalog_url=catalog_url)
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        try:
            rows = catalog.search_masters(model=model, weights=weights, recipe_hash=recipe_hash,
                                          since=_when(since, "--since"), until=_when(until, "--until"), limit=limit)
        except ValueError as exc:
            fail(str(exc))
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("made", "master", "recipe", "models", title=f"{len(rows)} master(s)")
    for r in rows:
        table.add_row(r["created_at"], escape(r["path"]), f"{r['recipe_name']} {r['recipe_hash'][:12]}",
                      "\n".join(f"{m['name']} {m['weights_sha256'][:12]}" for m in r["models"]))
    out.print(table)


def items(
    limit: Annotated[Optional[int], typer.Option(help="At most this many (newest first).")] = None,
    as_json: AsJson = False, home: Home = None, catalog_url: CatalogUrl = None,
) -> None:
    """The catalogued items: identifier, title, scans, masters, decisions."""
    from catalog.repository import Catalog

    cfg = settings_or_fail(home=home, catalog_url=catalog_url)
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        rows = catalog.list_items(limit)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("identifier", "title", "scans", "masters", "decisions", "uuid", title=f"{len(rows)} item(s)")
    for r in rows:
        decisions = ", ".join(f"{n} {k}" for k, n in (("approved", r["approvals"]), ("rejected", r["rejections"])) if n)
        table.add_row(escape(r["identifier"]), escape(r["title"] or ""), str(r["scans"]), str(r["masters"]),
                      decisions or "-", r["uuid"])
    out.print(table)


# --- export bag --------------------------------------------------------------------------------------

export_app = typer.Typer(help="Packages for hand-over.", no_args_is_help=True)


def resolve_items(catalog: Catalog, refs: list[str], *, run: str | None = None) -> list[str]:
    """The item uuids named by refs (a uuid, an identifier, or a master/access/original file), and
    the items of `run` (a run uuid or its first characters); exit 2 naming a ref that names none."""
    from tasks.files.atomic import sha256_file

    uuids: list[str] = []
    if run:
        found_run = catalog.run_items(run)
        if found_run is None:
            fail(f"--run {run}: no such run in the catalog (or the prefix names several)")
        uuids += found_run
    for ref in refs:
        path = Path(ref)
        if path.is_file():
            found = catalog.file_ref(path=str(path.resolve()), sha256=sha256_file(path))
            if found is None:
                fail(f"{ref}: a file the catalog does not know")
            named = [(found.item_uuid, found.item_identifier)]
        else:
            named = catalog.items_named(ref)
        if not named:
            fail(f"{ref}: no item with this uuid or identifier, and no such file")
        if len(named) > 1:
            fail(f"{ref}: {len(named)} items have this identifier ({', '.join(u for u, _ in named)}); "
                 "name them by uuid")
        if named[0][0] not in uuids:
            uuids.append(named[0][0])
    return uuids


@export_app.command("bag")
def export_bag(
    items: Annotated[list[str], typer.Argument(help="Items (uuid, identifier or a master/access file), then DEST.")],
    as_json: AsJson = False, home: Home = None, catalog_url: CatalogUrl = None,
) -> None:
    """Write a BagIt bag (sha256 + sha512 manifests) of the items' originals, masters, access
    copies, review sheets, PREMIS XML and JSON provenance; DEST must be new or empty."""
    from catalog.repository import Catalog
    from tasks.preservation.bag import BagError, BagItem, make_bag

    if len(items) < 2:
        fail("give at least one ITEM and the DEST folder")
    *refs, dest = items
    cfg = settings_or_fail(home=home, catalog_url=catalog_url)
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        uuids = resolve_items(catalog, refs)
        bag_items = []
        for item_uuid in uuids:
            record, audits = catalog.item_with_audits(item_uuid)
            bag_items.append(BagItem(record, {"audits": audits}))
    try:
        report = make_bag(bag_items, dest)
    except BagError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(vars(report)))
        return
    for item in report.items:
        _line(f"{item['identifier']} ({item['uuid']}): {item['files']} files in {item['folder']}")
    _line(f"bag {report.path}: {report.payload_files} payload files, {report.payload_bytes} bytes, valid")


def register(app: typer.Typer) -> None:
    app.command()(approve)
    app.command()(reject)
    app.command()(fixity)
    app.command()(reproduce)
    app.command()(find)
    app.command()(items)
    cli_archivematica.register(export_app)  # export archivematica
    cli_ocfl.register(export_app)  # export ocfl
    cli_iiif.register(export_app)  # export iiif
    app.add_typer(export_app, name="export")
