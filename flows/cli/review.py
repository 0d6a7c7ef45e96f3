"""Review commands of `restorium` (registered on the app by flows/cli/app.py):

    review [--host 127.0.0.1] [--port 8765] [--token T | --password-file F] [--queue-only] [--cache-mb N]
        serve the review web app on the archive home and its catalog
    review --prune-cache [--cache-mb N]
        shrink the preview cache to its budget (least recently viewed first) and exit
    reprocess --pending [--json]
        remake the masters reviewers asked for (the app starts this itself unless --queue-only)

Exit codes: 0 done; 1 some requests could not be remade; 2 nothing done (bad arguments).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from flows.cli.console import escape, fail, out, settings_or_fail
from tasks.records.results import ExitCode

Home = Annotated[Optional[Path], typer.Option(help="Archive root (RESTORIUM_HOME).")]
CatalogUrl = Annotated[Optional[str], typer.Option(help="Catalog URL (RESTORIUM_CATALOG_URL).")]


def review(
    host: Annotated[str, typer.Option(help="Address to listen on; other than loopback, a secret is required.")
                    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    token: Annotated[Optional[str], typer.Option(help="Shared secret every client must give (visible in ps: "
                                                 "prefer --password-file).")] = None,
    password_file: Annotated[Optional[Path], typer.Option(help="File whose first line is the shared secret.")] = None,
    queue_only: Annotated[bool, typer.Option("--queue-only", help="Only record reprocessing requests; run them "
                                             "later with `restorium reprocess --pending`.")] = False,
    cache_mb: Annotated[Optional[int], typer.Option(help="Preview cache budget in MiB (RESTORIUM_REVIEW_CACHE_MB, "
                                                    "default 2048); least recently viewed files go first.")] = None,
    prune_cache: Annotated[bool, typer.Option("--prune-cache", help="Shrink the preview cache to its budget and "
                                              "exit (safe while the app runs).")] = False,
    home: Home = None, catalog_url: CatalogUrl = None,
) -> None:
    """Serve the review pages: runs, masters to review, before/after with zoom, approve, reject, reprocess."""
    from flows.review.security import check_bind, is_loopback, read_secret

    if prune_cache:
        cfg = settings_or_fail(home=home, catalog_url=catalog_url, review_cache_mb=cache_mb)
        from flows.review.app import describe_prune, prune_previews

        out.print(describe_prune(prune_previews(cfg)), highlight=False, soft_wrap=True)
        raise typer.Exit(ExitCode.DONE)
    try:
        secret = read_secret(token, password_file)
        check_bind(host, secret)
    except ValueError as exc:
        fail(str(exc))
    cfg = settings_or_fail(home=home, catalog_url=catalog_url, review_cache_mb=cache_mb)
    import uvicorn

    from flows.review.app import create_app

    pruned = logging.getLogger("flows.review.app")  # what the app prunes from its preview cache, on stderr
    pruned.setLevel(logging.INFO)
    if not pruned.handlers:
        pruned.addHandler(logging.StreamHandler())

    app = create_app(cfg, secret=secret, loopback=is_loopback(host), autorun=not queue_only)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    out.print(f"reviewing {cfg.home} at {url}" + (" (token or password required; sign in at /login)" if secret else ""),
              highlight=False, soft_wrap=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False)


def reprocess(
    pending: Annotated[bool, typer.Option("--pending", help="Run every queued request.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: Home = None, catalog_url: CatalogUrl = None,
) -> None:
    """Remake the masters reviewers asked for in the review app (new masters; the old ones stay)."""
    if not pending:
        fail("say --pending to run the queued reprocessing requests")
    cfg = settings_or_fail(home=home, catalog_url=catalog_url)
    from flows.restore_batch import ArchiveBusy
    from flows.review.queue import run_pending
    from flows.workers import shutdown

    try:
        results = run_pending(cfg)
    except ArchiveBusy as busy:  # the requests stay queued for the next try
        fail(str(busy))
    finally:
        shutdown()
    if as_json:
        out.print_json(json.dumps(results))
    else:
        for r in results:
            colour = "green" if r["outcome"] == "success" else "red"
            out.print(f"[{colour}]{r['outcome']}[/] request {r['request']}: {escape(str(r['detail']))}",
                      highlight=False, soft_wrap=True)
        out.print(f"{len(results)} request(s) handled", highlight=False)
    raise typer.Exit(ExitCode.SCANS_FAILED if any(r["outcome"] != "success" for r in results) else ExitCode.DONE)


def register(app: typer.Typer) -> None:
    app.command()(review)
    app.command()(reprocess)
