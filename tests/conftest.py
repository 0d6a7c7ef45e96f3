"""Shared fixtures: where the real weights and the real test images are.

The weights and images live beside the project in ../shared (never copied in). A test that
needs them fails loudly when they are missing rather than skipping: CI always has them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = SHARED / "data"
    assert path.is_dir(), f"test images expected in {path} (../shared/data beside the project)"
    return path


@pytest.fixture(scope="session")
def shared_models() -> Path:
    path = Path(os.environ.get("RESTORIUM_MODELS_DIR") or SHARED / "models")
    assert (path / "realesr-general-x4v3.pth").is_file(), (
        f"real weights expected in {path}: set RESTORIUM_MODELS_DIR or keep ../shared/models beside the project"
    )
    return path
