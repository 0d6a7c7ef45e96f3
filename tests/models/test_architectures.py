"""models.architectures: one spec per architecture, looked up instead of branched on."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import get_args

import pytest
import torch

from models.architectures import ARCHITECTURES, CHECKPOINT_KEYS, ArchitectureSpec, spec_for
from models.cards import CARDS, Architecture, get_card
from models.loading import build_network, instantiate, read_state_dict
from models.weights import ImportWeightsError, import_weights

# One card per torch architecture: its network is built from the spec with that card's kwargs.
TORCH_CARDS = ("realesr-animevideov3", "RealESRGAN_x2plus", "ffdnet_color", "restorium-damage-unet")


def test_every_architecture_has_exactly_one_spec() -> None:
    assert set(ARCHITECTURES) == set(get_args(Architecture))
    assert all(name == spec.name for name, spec in ARCHITECTURES.items())
    for card in CARDS.values():
        assert spec_for(card) is ARCHITECTURES[card.architecture]
    assert {get_card(name).architecture for name in TORCH_CARDS} == {
        name for name, spec in ARCHITECTURES.items() if spec.torch_state_dict
    }


def test_unknown_architecture_raises_the_documented_error() -> None:
    card = replace(get_card("realesr-general-x4v3"), name="odd", architecture="SwinIR")  # type: ignore[arg-type]
    message = "model 'odd': no builder for architecture 'SwinIR'"
    with pytest.raises(ValueError) as err:
        spec_for(card)
    assert str(err.value) == message
    with pytest.raises(ValueError) as err:
        instantiate(card)
    assert str(err.value) == message


def test_yunet_is_an_onnx_file_for_opencv_not_a_torch_state_dict(tmp_path: Path, shared_models: Path) -> None:
    card = get_card("face_detection_yunet")
    spec = spec_for(card)
    assert not spec.torch_state_dict and spec.build is None and spec.check_onnx is not None
    with pytest.raises(ValueError) as err:
        instantiate(card)
    assert str(err.value) == "model 'face_detection_yunet': no builder for architecture 'YuNet'"

    spec.check_onnx(shared_models / "face_detection_yunet.onnx")  # the real file opens
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx graph")
    with pytest.raises(ImportWeightsError, match=r"junk\.onnx: not a YuNet ONNX model OpenCV can load \("):
        import_weights(junk, "face_detection_yunet", tmp_path / "models")


def test_a_spec_is_either_torch_or_onnx() -> None:
    with pytest.raises(ValueError, match="either build"):
        ArchitectureSpec("Nothing", None)
    with pytest.raises(ValueError, match="either build"):
        ArchitectureSpec("Both", ARCHITECTURES["FFDNet"].build, check_onnx=lambda path: None)


@pytest.mark.parametrize("name", TORCH_CARDS)
def test_each_network_round_trips_its_own_state_dict(name: str, tmp_path: Path) -> None:
    card = get_card(name)
    torch.manual_seed(19)
    state = instantiate(card).state_dict()
    torch.manual_seed(19)
    assert all(torch.equal(v, state[k]) for k, v in instantiate(card).state_dict().items())  # seeded: same net

    path = tmp_path / card.filename
    torch.save({card.params_key: state} if card.params_key else state, path)
    loaded = build_network(card, path).state_dict()
    assert list(loaded) == list(state)
    assert all(torch.equal(loaded[k], v) for k, v in state.items())


def test_checkpoint_keys_are_read_in_the_specs_order(tmp_path: Path) -> None:
    card = replace(get_card("ffdnet_color"), params_key=None)
    assert spec_for(card).checkpoint_keys == CHECKPOINT_KEYS == ("params_ema", "params", "state_dict")
    marked = {key: {"w": torch.full((1,), float(i))} for i, key in enumerate(CHECKPOINT_KEYS)}
    path = tmp_path / "ckpt.pth"
    for first in range(len(CHECKPOINT_KEYS)):
        torch.save(dict(list(marked.items())[first:]), path)
        assert read_state_dict(card, path)["w"].item() == first
    # The card's own key wins over the fallbacks.
    torch.save(marked, path)
    assert read_state_dict(replace(card, params_key="params"), path)["w"].item() == 1


def test_architectures_module_is_light() -> None:
    code = (
        "import sys, models.architectures\n"
        "print(','.join(m for m in ('torch', 'basicsr', 'realesrgan', 'cv2') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported eagerly: {out.stdout.strip()}"
