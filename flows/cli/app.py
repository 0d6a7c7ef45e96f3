"""The `restorium` command (Typer + Rich). Progress goes to stderr, results to stdout.

Exit codes: tasks.records.results.ExitCode (0 done, 1 some scans failed, 2 nothing was done,
3 stopped early on purpose, 4 crashed); a run's code comes from its scans' statuses there.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from flows.cli.console import err, escape, fail, out, settings_or_fail
from flows.cli.preservation import register as register_preservation
from flows.cli.review import register as register_review
from flows.cli.schedule import register as register_schedule
from tasks.records.results import ExitCode, ScanStatus, Verdict, run_exit_code
from tasks.records.types import AuditRecord

# Prefect's INFO lines would interleave with the progress bar (the user's env still wins).
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

app = typer.Typer(help="Archival digitization: restore and upscale scans, with provenance.", no_args_is_help=True)
models_app = typer.Typer(help="Model weights: list, fetch from the publisher, import a local file.")
app.add_typer(models_app, name="models")


class _RichReporter:
    def __init__(self, console: Console):
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[green]{task.fields[mastered]} mastered[/] [dim]{task.fields[unchanged]} unchanged[/] "
                       "[red]{task.fields[failed]} failed[/]"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
        )
        self.task: TaskID | None = None
        self.counts: dict[str, Any] = {ScanStatus.MASTERED: 0, ScanStatus.UNCHANGED: 0, ScanStatus.FAILED: 0}

    def start(self, total: int, description: str) -> None:
        self.progress.start()
        self.task = self.progress.add_task(description, total=total, **self.counts)

    def advance(self, path: str, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if self.task is not None:
            self.progress.update(self.task, advance=1, **self.counts)

    def note(self, message: str) -> None:
        self.console.print(f"[dim]{escape(message)}[/]", highlight=False)

    def stop(self) -> None:
        self.progress.stop()


@app.command()
def run(
    scans_dir: Annotated[Path, typer.Argument(help="Folder of scans (searched recursively).")],
    recipe: Annotated[str, typer.Option(help="Preset name or recipe .yaml file.")] = "archival",
    scale: Annotated[Optional[float], typer.Option(help="Master = exactly N times the scan size.")] = None,
    long_edge: Annotated[Optional[int], typer.Option(help="Master long edge in pixels (3840 = '4K').")] = None,
    home: Annotated[Optional[Path], typer.Option(help="Archive root (RESTORIUM_HOME).")] = None,
    models_dir: Annotated[Optional[Path], typer.Option(help="Weights folder (RESTORIUM_MODELS_DIR).")] = None,
    catalog_url: Annotated[Optional[str], typer.Option(help="Catalog URL (RESTORIUM_CATALOG_URL).")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Model workers (RESTORIUM_WORKERS).")] = None,
    precision: Annotated[Optional[str], typer.Option(
        help="Models' compute precision: auto, fp32, bf16, fp16 (RESTORIUM_PRECISION; default auto: bf16 "
        "where the hardware has it). Recorded in every master; it changes pixels slightly.")] = None,
    profile: Annotated[Optional[str], typer.Option(
        help="Capture-spec profile the QA gate enforces (RESTORIUM_CAPTURE_PROFILE).")] = None,
    only_new: Annotated[bool, typer.Option(
        "--only-new", help="Master only scans without any master yet; keep masters made by another recipe, "
        "weights or version as they are.")] = False,
    metadata: Annotated[Optional[Path], typer.Option(
        help="Item spreadsheet (CSV, one row per scan: file, identifier, title, date, creator, rights, "
        "width, height, unit mm/cm/in, dc.*): stored on the items, written into the masters; a physical "
        "size gives the effective ppi the capture profile judges.")] = None,
    sign: Annotated[bool, typer.Option(
        "--sign", help="Sign masters and access copies with content credentials (C2PA) using "
        "RESTORIUM_SIGNING_CERT and RESTORIUM_SIGNING_KEY.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable summary.")] = False,
) -> None:
    """Ingest, check, restore, upscale and tag every scan in SCANS_DIR."""
    if scale is not None and long_edge is not None:
        fail("give --scale or --long-edge, not both")
    if not scans_dir.is_dir():
        fail(f"{scans_dir}: not a folder")
    # Ray prints what its raylets report (a worker that died, a task retried) on the driver's
    # stdout; with --json, stdout must carry the summary alone, so everything else goes to stderr.
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        summary = _run_flow(scans_dir, recipe, scale, long_edge, only_new=only_new, metadata=metadata, sign=sign,
                            home=home,
                            models_dir=models_dir, catalog_url=catalog_url, workers=workers,
                            precision=precision, capture_profile=profile)
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        _print_summary(summary)
    _exit_for(summary)


def _exit_for(summary: dict) -> None:
    code = run_exit_code(summary["counts"], summary.get("stopped"))
    if code == ExitCode.STOPPED:
        fail(f"run stopped: {summary['stopped']}", code=code)
    raise typer.Exit(code)


def _run_flow(scans_dir: Path, recipe: str, scale, long_edge, *, only_new: bool = False,
              metadata: Path | None = None, sign: bool = False, **overrides: Any) -> dict:
    from flows.run_plan import RunPlanError, plan_run

    cfg = settings_or_fail(**overrides)
    try:  # recipe, capture profile, weights and item sheet settled once, before Prefect and Ray start
        plan = plan_run(cfg, recipe, scale=scale, long_edge=long_edge, metadata=metadata, sign=sign)
    except RunPlanError as exc:
        fail(str(exc))
    from flows.progress import set_reporter
    from flows.restore_batch import ArchiveBusy, RunStopped, restore_batch

    reporter = _RichReporter(err)
    set_reporter(reporter)
    err.print(f"[dim]starting Prefect and Ray (home {escape(str(cfg.home))})…[/]")
    try:
        return restore_batch(str(scans_dir), plan=plan, only_new=only_new)
    except (ArchiveBusy, RunPlanError) as refused:  # another run holds the archive; a sheet row names no scan
        fail(str(refused))
    except RunStopped as stopped:  # on purpose (failure budget, full disk): say how far it got, and why
        stopped.summary["stopped"] = str(stopped)
        return stopped.summary
    except Exception as exc:  # noqa: BLE001 - not a bad scan (those are outcomes): Prefect, Ray or the catalog failed
        err.print_exception(max_frames=8)
        fail(f"run crashed: {type(exc).__name__}: {exc}\nWhat was recorded stays; run again to resume.",
             code=ExitCode.CRASHED)
    finally:
        reporter.stop()
        set_reporter(None)
        from flows.workers import shutdown

        shutdown()


def _relative(path: str | None, base: str) -> str:
    if not path:
        return ""
    p = Path(path)
    return str(p.relative_to(base)) if p.is_relative_to(base) else path


def _print_summary(summary: dict) -> None:
    table = Table(title=f"run {summary['run_uuid']} — recipe {summary['recipe']} ({summary['recipe_hash'][:12]})",
                  caption=f"scans in {summary['scans_dir']}; masters under {summary['home']}")
    table.add_column("scan", overflow="fold")
    table.add_column("outcome")
    table.add_column("master or reason", overflow="fold")
    style = {ScanStatus.MASTERED: "green", ScanStatus.UNCHANGED: "dim", ScanStatus.FAILED: "red",
             ScanStatus.SKIPPED: "yellow"}
    for scan in summary["scans"]:
        if scan["outcome"] in (ScanStatus.FAILED, ScanStatus.SKIPPED):
            detail = escape((f"[{scan['kind']}] " if scan.get("kind") else "") + (scan["reason"] or ""))
        else:
            detail = escape(_relative(scan["master"], summary["home"]) or scan["reason"] or "")
        if scan.get("flags"):
            detail += "".join(f"\n[yellow]⚑ {escape(flag)}[/]" for flag in scan["flags"])
        detail += "".join(f"\n[dim]note: {escape(note)}[/]" for note in scan.get("notes") or [])
        table.add_row(escape(_relative(scan["path"], summary["scans_dir"])),
                      f"[{style[scan['outcome']]}]{scan['outcome']}[/]", detail)
    out.print(table)
    counts = summary["counts"]
    out.print(
        f"{counts['scans']} scans: {counts['ingested']} ingested, {counts['mastered']} mastered, "
        f"{counts['unchanged']} unchanged, {counts['failed']} failed"
        + (f", {counts['skipped']} other entries skipped" if counts.get("skipped") else "") + " "
        f"in {summary['timings'].get('wall_seconds', 0):.1f} s",
        highlight=False,
    )
    if counts.get("flagged"):
        out.print(f"{counts['flagged']} master(s) flagged for review (see the review sheets in "
                  f"{summary['home']}/reviews)", highlight=False, markup=False)
    if summary.get("qa_report"):
        out.print(f"QA summary: {summary['qa_report']}", highlight=False, markup=False)
    if summary.get("report"):
        out.print(f"run report: {summary['report']}", highlight=False, markup=False)
    out.print(f"masters in {summary['home']}/masters, access copies in {summary['home']}/access",
              highlight=False, markup=False)
    out.print(f"catalog: {summary['catalog']}", highlight=False, markup=False)


@app.command()
def audit(
    master: Annotated[Path, typer.Argument(help="A master (or access copy) file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    from_file: Annotated[bool, typer.Option("--from-file", help="Read the embedded XMP only, no catalog.")] = False,
    home: Annotated[Optional[Path], typer.Option(help="Archive root (RESTORIUM_HOME).")] = None,
    catalog_url: Annotated[Optional[str], typer.Option(help="Catalog URL (RESTORIUM_CATALOG_URL).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="text (how it was made), or the item's whole "
                                     "record: premis (PREMIS 3.0 XML) or json.")] = "text",
) -> None:
    """How a master was made: original, every step with parameters and agents, models, recipe."""
    if not master.is_file():
        fail(f"{master}: no such file")
    if fmt not in ("text", "premis", "json"):
        fail(f"--format {fmt!r}: expected text, premis or json")
    if fmt != "text":
        if from_file or as_json:
            fail("--format premis/json exports the item's whole record from the catalog; "
                 "it does not combine with --from-file or --json")
        from flows.cli.preservation import item_export

        item_export(master, fmt, settings_or_fail(home=home, catalog_url=catalog_url))
        return
    later: list = []
    record: AuditRecord | None
    cfg = settings_or_fail(home=home, catalog_url=catalog_url)  # the catalog's, and the trust anchors
    if from_file:
        from tasks.files.xmp import ProvenanceError, read_provenance

        try:
            record = read_provenance(master.resolve())
        except ProvenanceError as exc:
            fail(str(exc))
    else:
        from catalog.repository import Catalog
        from tasks.files.atomic import sha256_file

        actual = sha256_file(master)
        with Catalog.open(cfg.resolved_catalog_url) as catalog:
            record = catalog.audit(master_path=str(master.resolve()), sha256=actual)
            if record is not None:  # decisions, fixity checks, reproductions since it was made
                later = catalog.later_events(record.master["uuid"])
        if record is None:
            fail(f"{master}: not a master in the catalog {cfg.resolved_catalog_url} "
                 "(try --from-file, or point --home/--catalog-url at the archive that made it)")
        if record.master["sha256"] != actual:
            err.print(f"[bold red]fixity warning:[/] {escape(str(master))} has sha256 {actual}, the catalog recorded "
                      f"{record.master['sha256']}: the file changed after it was made", highlight=False)
    data = record.to_dict()
    credentials = _content_credentials(master, cfg)
    data["content_credentials"] = credentials
    if as_json:
        out.print_json(json.dumps(data))
    else:
        from flows.cli.preservation import print_later_events

        _print_audit(data)
        print_later_events(later)
        style = {"verified": "green", "untrusted": "yellow", "invalid": "bold red"}.get(credentials["status"], "dim")
        out.print(f"[bold]content credentials[/] [{style}]{credentials['status']}[/]: {escape(credentials['message'])}",
                  highlight=False, soft_wrap=True)
    if credentials["status"] == "invalid":  # the file changed after it was signed
        raise typer.Exit(ExitCode.SCANS_FAILED)


def _content_credentials(path: Path, cfg: Any) -> dict[str, Any]:
    """Whether the file's C2PA manifest verifies (trusting the settings' anchors): status, message, codes."""
    from tasks.files.content_credentials import verify_file

    anchors = cfg.signing_trust_anchors.read_text() if cfg.signing_trust_anchors else None
    found = verify_file(path.resolve(), trust_anchors=anchors)
    return {"status": found.status, "message": found.message, "codes": list(found.codes)}


def _print_audit(data: dict) -> None:
    line = lambda text: out.print(text, highlight=False, soft_wrap=True)
    line(f"[bold]master[/]    {data['master']['path']}\n            sha256 {data['master']['sha256']}")
    o = data["original"]
    line(f"[bold]original[/]  {o['path']}\n            sha256 {o['sha256']}\n"
         f"            item {o['identifier']} ({o['item_uuid']})")
    r = data["recipe"]
    line(f"[bold]recipe[/]    {r['name']} {r['hash']}")
    for reason in r.get("plan_reasons", []):
        line(f"            • {reason}")
    line(f"[bold]run[/]       {data['run']['uuid']}")
    line(f"[bold]software[/]  {data['software']['name']} {data['software']['version']}")
    for m in data["models"]:
        line(f"[bold]model[/]     {m['name']} ({m['architecture']}) weights sha256 {m['weights_sha256']}")
    line("[bold]steps[/]")
    for s in data["steps"]:
        line(f"  {s['when']}  {s['type']} / {s['step']}  [{'red' if s['outcome'] == 'failure' else 'green'}]"
             f"{s['outcome']}[/]  {s['detail']}")
        agents = "; ".join(f"{a['name']} {a['version']}".strip() for a in s["agents"])
        line(f"      [dim]agents:[/] {agents}")
        params = {k: v for k, v in s["parameters"].items() if k not in ("recipe_hash", "derivation_key")}
        line(f"      [dim]parameters:[/] {json.dumps(params, ensure_ascii=False)}")


@app.command()
def demo(
    home: Annotated[Path, typer.Option(help="Archive root for the demo.")] = Path("archive-demo"),
    models_dir: Annotated[Optional[Path], typer.Option(help="Weights folder (RESTORIUM_MODELS_DIR).")] = None,
) -> None:
    """Make sample 'old scans' from scikit-image's photographs and run the pipeline on them."""
    from flows.demo_scans import write_demo_scans

    scans = home / "scans"
    written = write_demo_scans(scans)
    err.print(f"wrote {len(written)} sample scans to {scans}")
    summary = _run_flow(scans, "archival", None, None, home=home, models_dir=models_dir)
    _print_summary(summary)
    mastered = [s["master"] for s in summary["scans"] if s["master"]]
    if mastered:
        command = sys.argv[0] if Path(sys.argv[0]).name == "restorium" else "restorium"
        out.print(f"\nHow was it made? {command} audit --home {home} {mastered[0]}", highlight=False, soft_wrap=True)
    _exit_for(summary)


@models_app.command("list")
def models_list(
    models_dir: Annotated[Optional[Path], typer.Option(help="Weights folder (RESTORIUM_MODELS_DIR).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Known models and whether their weights are present."""
    from models.weights import list_models

    cfg = settings_or_fail(models_dir=models_dir)
    rows = list_models(cfg.models_dir)
    if as_json:
        out.print_json(json.dumps(rows, default=str))
        return
    table = Table("name", "task", "architecture", "scale", "present", "sha256", "licence",
                  title=f"models in {cfg.models_dir}")
    for row in rows:
        table.add_row(row["name"], row["task"], row["architecture"], str(row["scale"]),
                      "yes" if row["present"] else "[red]no[/]", (row.get("sha256") or "")[:16], row["licence"])
    out.print(table)


@models_app.command("fetch")
def models_fetch(
    name: Annotated[str, typer.Argument(help="Model name (see `restorium models list`).")],
    models_dir: Annotated[Optional[Path], typer.Option(help="Weights folder (RESTORIUM_MODELS_DIR).")] = None,
) -> None:
    """Download a model's weights from its publisher's official URL."""
    from models.cards import UnknownModelError
    from models.weights import FetchError, fetch

    cfg = settings_or_fail(models_dir=models_dir)
    try:
        got = fetch(name, cfg.models_dir)
    except (FetchError, UnknownModelError) as exc:
        fail(str(exc))
    out.print(f"{name}: {got.path} sha256 {got.sha256}")


@models_app.command("import")
def models_import(
    path: Annotated[Path, typer.Argument(help="A local weights file.")],
    name: Annotated[str, typer.Option(help="Name to register it under.")],
    like: Annotated[Optional[str], typer.Option(help="Known model whose architecture a new name uses.")] = None,
    models_dir: Annotated[Optional[Path], typer.Option(help="Weights folder (RESTORIUM_MODELS_DIR).")] = None,
) -> None:
    """Register a local weights file (checked to load into its architecture)."""
    from models.weights import import_weights

    cfg = settings_or_fail(models_dir=models_dir)
    try:
        got = import_weights(path, name, cfg.models_dir, like=like)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        fail(f"{path}: {exc}")
    out.print(f"{name}: {got.path} sha256 {got.sha256}")


def _image_files(paths: list[Path]) -> list[Path]:
    """The files given, and the scans under the folders given (searched recursively)."""
    from tasks.files.ingest import discover

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += discover(path)
        elif path.is_file():
            files.append(path)
        else:
            fail(f"{path}: no such file or folder")
    return files


@models_app.command("finetune")
def models_finetune(
    photos: Annotated[list[Path], typer.Argument(help="Clean photographs (files or folders) to train on.")],
    name: Annotated[str, typer.Option(help="Name to register the new weights under.")] = "restorium-fidelity-x4v3",
    parent: Annotated[str, typer.Option("--from", help="Compact upscaler to start from.")] = "realesr-general-x4v3",
    steps: Annotated[int, typer.Option(min=1, help="Training steps (batches of 8 crops).")] = 1500,
    seed: Annotated[int, typer.Option(help="Seed of the crops and degradations drawn.")] = 0,
    models_dir: Annotated[Optional[Path], typer.Option(help="Weights folder (RESTORIUM_MODELS_DIR).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace weights already registered under NAME.")] = False,
) -> None:
    """Fine-tune a compact upscaler for fidelity (L1 loss) on degraded copies of clean photographs.

    About 0.4 s a step on a 2-core CPU (a GPU is used when RESTORIUM_DEVICE allows). The weights
    and a NAME.training.json record (settings, the parent's and the photographs' hashes) go into
    the models folder.
    """
    from models.cards import UnknownModelError
    from models.finetune import FinetuneSettings, train_and_register
    from models.weights import WeightsError

    files = _image_files(photos)
    if not files:
        fail("no photographs to train on (TIFF, PNG or JPEG)")
    cfg = settings_or_fail(models_dir=models_dir)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("L1 {task.fields[loss]:.4f}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=err)
    every = max(1, steps // 20)

    def report(step: int, loss: float) -> None:
        progress.update(task, completed=step, loss=loss)
        if not err.is_terminal and step % every == 0:  # a log file gets a line every 5 %
            err.print(f"{name}: step {step}/{steps}, L1 {loss:.4f}", highlight=False)

    try:
        with progress:
            task = progress.add_task(f"fine-tuning {name}", total=steps, loss=0.0)
            got = train_and_register(files, parent, name, cfg.models_dir, FinetuneSettings(steps=steps, seed=seed),
                                     overwrite=overwrite, progress=report, device=cfg.device)
    except (WeightsError, UnknownModelError, ValueError, OSError) as exc:
        fail(str(exc))
    out.print(f"{name}: {got.path} sha256 {got.sha256}")


@models_app.command("prepare")
def models_prepare(
    photos: Annotated[list[Path], typer.Argument(help="Clean photographs (files or folders) to train on.")],
    models_dir: Annotated[Optional[Path], typer.Option(help="Weights folder (RESTORIUM_MODELS_DIR).")] = None,
    source: Annotated[Optional[Path], typer.Option("--from", help="A folder of published weights to link in "
                                                   "first (the parents).")] = None,
    only: Annotated[Optional[list[str]], typer.Option(
        help="Make this model (repeatable; default restorium-fidelity-x4v3; restorium-damage-unet on request).")] = None,
) -> None:
    """Make the weights nobody publishes (the fidelity upscaler; the damage detector on request).

    Each is trained from its published parent and the clean photographs given, seeded, and only
    when absent or made from other settings or photographs.
    """
    from models.cards import UnknownModelError
    from models.prepare import FIDELITY_MODEL, prepare
    from models.weights import WeightsError

    files = _image_files(photos)
    if not files:
        fail("no photographs to train on (TIFF, PNG or JPEG)")
    cfg = settings_or_fail(models_dir=models_dir)
    if source is not None and not source.is_dir():
        fail(f"{source}: no such folder of weights")
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=err)
    tasks: dict[str, Any] = {}

    def report(name: str, step: int, steps: int, loss: float) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(f"making {name}", total=steps, loss=loss)
        progress.update(tasks[name], completed=step, loss=loss)
        if not err.is_terminal and step % max(1, steps // 10) == 0:  # a log file gets a line every 10 %
            err.print(f"{name}: step {step}/{steps}, loss {loss:.4f}", highlight=False)

    try:
        with progress:
            done = prepare(cfg.models_dir, files, source=source, only=only or (FIDELITY_MODEL,),
                           progress=report, device=cfg.device)
    except (WeightsError, UnknownModelError, ValueError, OSError) as exc:
        fail(str(exc))
    for item in done:
        if item.action == "made":
            out.print(f"{item.name}: made in {item.seconds:.0f} s, {item.path} sha256 {item.sha256}")
        elif item.action == "kept":
            out.print(f"{item.name}: up to date, {item.path} sha256 {item.sha256}")
    linked = [item.name for item in done if item.action == "linked"]
    if linked:
        out.print(f"linked from {source}: {', '.join(linked)}")


@app.command()
def qa(
    paths: Annotated[list[Path], typer.Argument(help="Scan files or folders (searched recursively).")],
    profile: Annotated[Optional[str], typer.Option(help="Capture-spec profile (name or YAML).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: one object per file.")] = False,
) -> None:
    """Diagnose scans without changing anything: verdict, reasons and findings per file."""
    from config.capture import CaptureProfileError, load_capture_profile
    from tasks.qa.checkup import check_file

    try:
        chosen = load_capture_profile(profile) if profile else None
    except CaptureProfileError as exc:
        fail(str(exc))
    files = _image_files(paths)
    cfg = settings_or_fail()
    results = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task("diagnosing", total=len(files))
        for path in files:
            results.append(check_file(path, profile=chosen, max_pixels=cfg.max_pixels))
            progress.advance(task)
    if as_json:
        out.print_json(json.dumps(results))
    else:
        _print_qa(results)
    failed = any(r["verdict"] == Verdict.FAIL for r in results)
    raise typer.Exit(ExitCode.SCANS_FAILED if failed else ExitCode.DONE)


def _print_qa(results: list[dict]) -> None:
    table = Table("file", "verdict", "reasons", "blur", "noise σ", "scratches", "contrast", "cast", "skew°")
    style = {"pass": "green", "warn": "yellow", "fail": "red"}
    for r in results:
        f = r["findings"]
        blur = f.get("blur", {})
        table.add_row(
            r["path"], f"[{style[r['verdict']]}]{r['verdict']}[/]", "\n".join(r["reasons"]) or "-",
            blur.get("type", ""), _num(f.get("noise_sigma")),
            _num((f.get("scratches") or {}).get("coverage"), pct=True), _num(f.get("contrast")),
            _num((f.get("color_cast") or {}).get("magnitude")), _num(f.get("skew_deg")),
        )
    out.print(table)


def _num(value: Any, pct: bool = False) -> str:
    if value is None:
        return ""
    return f"{value * 100:.2f} %" if pct else f"{value:.2f}"


@app.command()
def presets() -> None:
    """The recipe presets and their hashes."""
    from config.recipe import list_presets, load_recipe

    for name in list_presets():
        r = load_recipe(name)
        out.print(f"{name}  {r.hash[:12]}  {r.description}", highlight=False)


register_preservation(app)  # approve, reject, fixity, reproduce, find, export bag
register_schedule(app, fail, settings_or_fail)  # schedule
register_review(app)  # review, reprocess --pending


def main() -> None:  # pragma: no cover - console entry
    app()

