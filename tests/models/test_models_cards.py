"""The model registry, the basicsr shim, and the promise that listing models stays light."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys

import pytest

from models.cards import CARDS, UnknownModelError, get_card

RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download/"


def test_known_cards() -> None:
    assert set(CARDS) >= {"realesr-general-x4v3", "realesr-animevideov3", "RealESRGAN_x4plus",
                          "RealESRGAN_x2plus", "ffdnet_color"}
    assert get_card("realesr-general-x4v3").url == RELEASES + "v0.2.5.0/realesr-general-x4v3.pth"
    assert get_card("realesr-animevideov3").url == RELEASES + "v0.2.5.0/realesr-animevideov3.pth"
    assert get_card("RealESRGAN_x4plus").url == RELEASES + "v0.1.0/RealESRGAN_x4plus.pth"
    assert get_card("RealESRGAN_x2plus").url == RELEASES + "v0.2.1/RealESRGAN_x2plus.pth"
    ffdnet = get_card("ffdnet_color")
    assert (ffdnet.url, ffdnet.sha256, ffdnet.task, ffdnet.scale) == (None, None, "denoise", 1)


@pytest.mark.parametrize("card", list(CARDS.values()), ids=list(CARDS))
def test_card_is_consistent(card) -> None:
    assert card.filename.endswith(".onnx" if card.architecture == "YuNet" else ".pth")
    assert card.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", card.sha256)
    assert card.sha256 is None or card.url is not None, "a published hash without a URL verifies nothing"
    kw = card.arch_kwargs
    if card.task == "denoise":
        assert card.scale == 1
    elif card.architecture == "SRVGGNetCompact":
        assert kw["upscale"] == card.scale
    elif card.architecture == "RRDBNet":
        assert kw["scale"] == card.scale
    assert pickle.loads(pickle.dumps(card)) == card  # cards travel to Ray actors


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(UnknownModelError) as err:
        get_card("realesrgan-x4")
    message = str(err.value)
    assert "'realesrgan-x4'" in message
    for name in CARDS:
        assert name in message


def test_registry_and_weights_modules_do_not_import_torch_or_basicsr() -> None:
    code = (
        "import sys, models.cards, models.weights, models.torch_compat\n"
        "heavy = sorted(m for m in ('torch', 'basicsr', 'realesrgan', 'torchvision') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported eagerly: {out.stdout.strip()}"


def test_model_modules_import_basicsr_lazily() -> None:
    code = (
        "import sys, models.loading, models.tiling, models.upscaler, models.ffdnet\n"
        "print(','.join(m for m in ('basicsr', 'realesrgan') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported eagerly: {out.stdout.strip()}"


def test_shim_is_idempotent_and_makes_basicsr_importable() -> None:
    from models.torch_compat import SHIM_NAME, ensure_basicsr_importable

    ensure_basicsr_importable()
    first = sys.modules[SHIM_NAME]
    ensure_basicsr_importable()
    assert sys.modules[SHIM_NAME] is first
    from torchvision.transforms.functional_tensor import rgb_to_grayscale  # what basicsr imports

    assert callable(rgb_to_grayscale)
    import basicsr.data.degradations  # noqa: F401  (the basicsr module that imports the old name)
