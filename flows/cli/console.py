"""The CLI's two consoles (results on stdout, progress and errors on stderr) and its one way to fail.

Text from outside — paths, reasons, messages — must be escaped before Rich prints it: Rich reads
"[old]" in a folder name as a style tag and drops it, and "[/old]" raises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from tasks.records.results import ExitCode

if TYPE_CHECKING:
    from config.settings import Settings

out = Console()
err = Console(stderr=True)

__all__ = ["err", "escape", "fail", "out", "settings_or_fail"]


def fail(message: str, code: int = ExitCode.NOT_STARTED) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_or_fail(**overrides: Any) -> Settings:
    """The settings (options given win over RESTORIUM_* variables); a bad one is a clean exit 2
    naming the variable, not a traceback whose exit 1 would read as "some scans failed"."""
    from pydantic import ValidationError

    from config.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        fail("bad setting: " + "; ".join(_setting_problem(e) for e in exc.errors()))
    except FileNotFoundError as exc:
        fail(str(exc))


def _setting_problem(error: Any) -> str:
    name = ".".join(str(part) for part in error.get("loc", ())) or "settings"
    return f"RESTORIUM_{name.upper()} (or its option) = {error.get('input')!r}: {error.get('msg')}"
