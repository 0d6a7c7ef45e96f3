"""`restorium export iiif (ITEM...|--run RUN) DEST`: a static IIIF site any web server can serve.

    DEST/iiif/<item uuid>/<sha256[:16]>/   IIIF Image API 3 level-0 tiles + info.json of the scan
                                           and of the newest master (tasks.files.iiif_tiles)
    DEST/manifests/<item uuid>.json        IIIF Presentation 3 manifest: a canvas for the scan, one
                                           for the master (tasks.preservation.iiif_manifest)
    DEST/audit/<item uuid>.json            the audit record each manifest's seeAlso points to
    DEST/collections/run-<run uuid>.json   with --run: a collection of the run's manifests
    DEST/index.html                        links to every manifest and collection in DEST

Every URL starts with --base-url (where DEST will be published; default: `python -m http.server`
run in DEST). Each JSON file is written to a temporary sibling and renamed into place, each tile
folder is renamed into place whole, so a server never sees half a file; an item exported again
reuses its tiles (they are named by the file's content). Each manifest is read back by iiif-prezi3
and checked against the files in DEST before the command reports it. Registered on the `export`
group by flows/cli/preservation.py.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from flows.cli.console import escape, fail, out, settings_or_fail
from tasks.records.results import ExitCode

if TYPE_CHECKING:
    from tasks.records.item_record import ItemRecord

Home = Annotated[Optional[Path], typer.Option(help="Archive root (RESTORIUM_HOME).")]
CatalogUrl = Annotated[Optional[str], typer.Option(help="Catalog URL (RESTORIUM_CATALOG_URL).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DEFAULT_BASE_URL = "http://localhost:8000"
SITE_MARK = "restorium-iiif.json"  # says DEST is a site this command wrote (so it may write there again)


def export_iiif(
    items: Annotated[list[str], typer.Argument(
        help="Items (uuid, identifier or a master/access file), then DEST; with --run, DEST alone.")],
    run: Annotated[Optional[str], typer.Option(
        "--run", help="Also every item of this run (its uuid or first characters), and a collection of them.")] = None,
    base_url: Annotated[str, typer.Option(
        "--base-url", help="The URL DEST will be served at (every IIIF id starts with it).")] = DEFAULT_BASE_URL,
    as_json: AsJson = False, home: Home = None, catalog_url: CatalogUrl = None,
) -> None:
    """Write a static IIIF site: level-0 tiles of each item's scan and newest master, a IIIF
    Presentation 3 manifest per item, with --run a collection; DEST must be new, empty or a site
    written by this command. Exit 1 when an item failed (the others are done)."""
    from catalog.repository import Catalog
    from flows.cli.preservation import resolve_items
    from tasks.preservation import iiif_manifest as iiif

    *refs, dest_arg = items
    if not run and not refs:
        fail("give at least one ITEM (or --run RUN) and the DEST folder")
    try:
        base = iiif.base(base_url)
    except iiif.IiifError as exc:
        fail(f"--base-url: {exc}")
    dest = Path(dest_arg)
    if dest.exists() and (not dest.is_dir() or (any(dest.iterdir()) and not (dest / SITE_MARK).is_file())):
        fail(f"{dest}: not empty and not a site written by `restorium export iiif`")
    cfg = settings_or_fail(home=home, catalog_url=catalog_url)
    with Catalog.open(cfg.resolved_catalog_url) as catalog:
        uuids = resolve_items(catalog, refs, run=run)
        if not uuids:
            fail(f"--run {run}: the run recorded no item")
        in_run = set(catalog.run_items(run) or []) if run else set()
        loaded = [catalog.item_with_audits(u) for u in uuids]
    for sub in ("iiif", "manifests", "audit", "collections"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    _write_json(dest / SITE_MARK, {"generator": "restorium export iiif", "base_url": base})

    results = [_export_item(record, audits, dest, base) for record, audits in loaded]
    collection = None
    if run:
        run_uuid = next((e.run_uuid for r, _ in loaded for e in r.events if e.run_uuid and e.run_uuid.startswith(run)),
                        run)
        done = [(r["manifest"], r["label"]) for r in results if r["status"] == "exported" and r["uuid"] in in_run]
        data = iiif.run_collection(run_uuid, done, base_url=base)
        problems = _parse_problems(data)
        _write_json(dest / iiif.collection_path(run_uuid), data)
        collection = {"id": data["id"], "path": iiif.collection_path(run_uuid), "manifests": len(done),
                      "problems": problems}
    _write_index(dest)
    failed = sum(r["status"] == "failed" for r in results) + bool(collection and collection["problems"])
    report = {"dest": str(dest), "base_url": base, "items": results, "collection": collection, "failed": failed}
    if as_json:
        out.print_json(json.dumps(report))
    else:
        _print(report)
    if failed:
        raise typer.Exit(ExitCode.SCANS_FAILED)


def _export_item(record: ItemRecord, audits: dict[str, Any], dest: Path, base: str) -> dict[str, Any]:
    import pyvips

    from tasks.files.atomic import sha256_file
    from tasks.files.iiif_tiles import validate_iiif, write_iiif
    from tasks.preservation import iiif_manifest as iiif

    result: dict[str, Any] = {"uuid": record.uuid, "identifier": record.identifier, "status": "failed",
                              "manifest": None, "label": record.identifier, "files": [], "problems": []}
    try:
        scan, master = iiif.scan_and_master(record)
        images = {}
        for f in [scan] + ([master] if master else []):
            if sha256_file(f.path) != f.sha256:  # tiles are named by the catalog's digest: they must show those bytes
                raise iiif.IiifError(f"{f.role} {f.path}: its sha256 differs from the catalog's")
            tiles = write_iiif(Path(f.path), dest / "iiif", f"{record.uuid}/{f.sha256[:16]}", base_url=f"{base}/iiif")
            if tiles.created and (bad := validate_iiif(tiles.path)):
                raise iiif.IiifError(f"tiles of {f.role} {f.uuid}: {'; '.join(bad[:3])}")
            images[f.uuid] = iiif.ImageRef.from_info_json(json.loads(tiles.info_json.read_text()))
            result["files"].append({"uuid": f.uuid, "role": f.role, "service": tiles.id, "created": tiles.created})
        audit_path = f"audit/{record.uuid}.json"
        _write_json(dest / audit_path, {"item_uuid": record.uuid, "identifier": record.identifier,
                                        "audits": audits, "item_record": record.to_dict()})
        data = iiif.item_manifest(record, images, base_url=base, audit_url=f"{base}/{audit_path}")
        problems = _parse_problems(data) or iiif.site_problems(data, base_url=base, root=dest)
        if problems:  # never publish a manifest that does not check out
            raise iiif.IiifError("; ".join(problems))
        _write_json(dest / iiif.manifest_path(record), data)
    except (iiif.IiifError, ValueError, RuntimeError, OSError, pyvips.Error) as exc:  # this item fails, others go on
        result["problems"] = [str(exc).strip()]
        return result
    result.update(status="exported", manifest=data["id"], path=iiif.manifest_path(record),
                  label=next(iter(data["label"].values()))[0], canvases=len(data["items"]))
    return result


def _parse_problems(data: dict[str, Any]) -> list[str]:
    from tasks.preservation import iiif_manifest as iiif

    if data.get("type") == "Manifest":
        return iiif.manifest_problems(data)
    try:
        iiif.parse_back(data)
    except iiif.IiifError as exc:
        return [str(exc)]
    return []


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from tasks.files.atomic import atomic_write

    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def _write_index(dest: Path) -> None:
    """A page linking every manifest and collection in DEST (earlier exports' included)."""
    from tasks.files.atomic import atomic_write

    rows = []
    for folder in ("collections", "manifests"):
        for path in sorted((dest / folder).glob("*.json")):
            try:
                label = next(iter(json.loads(path.read_text())["label"].values()))[0]
            except (OSError, ValueError, KeyError, IndexError, StopIteration):
                continue  # not one of ours
            rows.append(f'<li><a href="{folder}/{html.escape(path.name)}">{html.escape(label)}</a> ({folder[:-1]})</li>')
    page = ("<!doctype html>\n<meta charset=\"utf-8\">\n<title>restorium IIIF</title>\n"
            "<h1>IIIF manifests and collections</h1>\n<p>Open a manifest's URL in any IIIF viewer. Each shows the "
            "scan (the preserved original) and restorium's master, a restored derivative of the scan.</p>\n"
            f"<ul>\n{chr(10).join(rows)}\n</ul>\n")
    atomic_write(dest / "index.html", lambda temp: temp.write_text(page, encoding="utf-8"))


def _print(report: dict[str, Any]) -> None:
    for r in report["items"]:
        if r["status"] == "exported":
            made = sum(f["created"] for f in r["files"])
            out.print(f"{escape(r['identifier'])} ({r['uuid']}): {r['manifest']} ({r['canvases']} canvases, "
                      f"{made} tiled, {len(r['files']) - made} reused)", highlight=False, soft_wrap=True)
        else:
            out.print(f"{escape(r['identifier'])} ({r['uuid']}): [red]failed[/]: {escape('; '.join(r['problems']))}",
                      highlight=False, soft_wrap=True)
    c = report["collection"]
    if c:
        state = "[red]" + escape("; ".join(c["problems"])) + "[/]" if c["problems"] else f"{c['manifests']} manifests"
        out.print(f"collection {c['id']}: {state}", highlight=False, soft_wrap=True)
    ok = sum(r["status"] == "exported" for r in report["items"])
    out.print(f"site {escape(report['dest'])} at {report['base_url']}: {ok} of {len(report['items'])} items, "
              "every manifest read back by iiif-prezi3 and checked against its tiles", highlight=False, soft_wrap=True)


def register(export_app: typer.Typer) -> None:
    export_app.command("iiif")(export_iiif)
