"""The CLI's two consoles (results on stdout, progress and errors on stderr) and its one way to fail.

Text from outside — paths, reasons, messages — must be escaped before Rich prints it: Rich reads
"[old]" in a folder name as a style tag and drops it, and "[/old]" raises.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

out = Console()
err = Console(stderr=True)

__all__ = ["err", "escape", "fail", "out"]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
