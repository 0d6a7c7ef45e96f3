from __future__ import annotations

import pytest

from config.capture import CaptureProfileError, list_capture_profiles, load_capture_profile


def test_packaged_profiles_load_and_cite_their_source():
    names = list_capture_profiles()
    assert {"fadgi-3star-photo", "fadgi-4star-photo", "metamorfoze-light", "access-only"} <= set(names)
    for name in names:
        profile = load_capture_profile(name)
        assert profile.name == name and profile.source
    fadgi3, fadgi4 = load_capture_profile("fadgi-3star-photo"), load_capture_profile("fadgi-4star-photo")
    assert (fadgi3.rules.bit_depth.min, fadgi3.rules.ppi.min, fadgi3.rules.ppi.accepted_min) == (16, 400, 392)
    assert fadgi4.rules.ppi.accepted_min == pytest.approx(396)
    assert load_capture_profile("access-only").rules.long_edge.severity == "warn"


def test_a_profile_by_path(tmp_path):
    path = tmp_path / "house.yaml"
    path.write_text("name: house\nsource: our scanning manual, 2024\nrules:\n  format:\n    allowed: [tif, jpg]\n")
    assert load_capture_profile(str(path)).rules.format.allowed == ["TIFF", "JPEG"]


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("name: x\nsource: s\nrules:\n  ppi:\n    min: 600\n    max: 300\n", "rules.ppi: Value error, ppi min 600.0 is above max 300.0"),
        ("name: x\nsource: s\nrules:\n  min_ppi: 400\n", "rules.min_ppi: Extra inputs are not permitted"),
        ("name: x\nsource: s\nrules:\n  icc_color_space:\n    allowed: [sRGB]\n", "unknown ICC colour space(s) ['SRGB']"),
        ("name: x\nsource: s\nrules:\n  bit_depth:\n    min: 16\n    severity: error\n", "rules.bit_depth.severity: Input should be 'fail' or 'warn'"),
        ("name: x\nsource: s\nrules: {}\n", "a capture profile needs at least one rule"),
        ("name: x\nrules:\n  long_edge: {min: 10}\n", "source: Field required"),
        ("- just\n- a list\n", "expected a mapping of fields, got list"),
        ("name: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_profiles_say_what_is_wrong(tmp_path, yaml_text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(CaptureProfileError) as info:
        load_capture_profile(str(path))
    assert str(info.value).startswith(f"invalid capture profile in {path}: ")
    assert expected in str(info.value)


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(CaptureProfileError, match=r"no capture profile named 'fadgi-5star'.*access-only, fadgi-3star-photo"):
        load_capture_profile("fadgi-5star")
