"""The one place that makes basicsr 1.4.2 (and so realesrgan 0.3.0) importable on current torchvision.

basicsr imports `torchvision.transforms.functional_tensor`, which torchvision removed in 0.17. We
register a stand-in module of that name exposing the one function basicsr uses, `rgb_to_grayscale`.

Call `ensure_basicsr_importable()` right before any basicsr/realesrgan import, and import those
lazily (inside the function that builds a network): importing basicsr costs ~5 s and pulls in its
whole training stack, which a CLI listing models or a catalog query must not pay for.
"""

from __future__ import annotations

import importlib.util
import sys
import types

SHIM_NAME = "torchvision.transforms.functional_tensor"


def ensure_basicsr_importable() -> None:
    """Register the torchvision shim once (idempotent; a no-op where torchvision still has it)."""
    if SHIM_NAME in sys.modules:
        return
    # An old torchvision that still ships the module needs no shim. find_spec imports the parent
    # packages (torchvision), which basicsr would import anyway.
    if importlib.util.find_spec(SHIM_NAME) is not None:
        return
    from torchvision.transforms import functional

    shim = types.ModuleType(SHIM_NAME)
    shim.__doc__ = "restorium shim: torchvision <0.17 name for what basicsr 1.4.2 imports."
    shim.rgb_to_grayscale = functional.rgb_to_grayscale  # type: ignore[attr-defined]
    sys.modules[SHIM_NAME] = shim
