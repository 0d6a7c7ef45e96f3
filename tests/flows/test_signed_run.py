"""Content credentials in a real run: `--sign` signs masters and access copies after their XMP,
audit says whether they verify, a changed byte is caught, and a run without it is unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from catalog import Catalog
from flows.cli import app
from flows.restore_batch import restore_batch
from flows.run_plan import RunPlanError
from tasks.files.atomic import sha256_file
from tasks.files.content_credentials import make_local_signing_identity, verify_file
from tasks.files.xmp import read_provenance

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_and_ray")]


@pytest.fixture(scope="module")
def signed(tmp_path_factory, shared_data, shared_models) -> dict:
    root = tmp_path_factory.mktemp("signed")
    scans = root / "scans"
    scans.mkdir()
    Image.open(shared_data / "old_photos/old/b.png").convert("RGB").crop((60, 60, 156, 132)).save(scans / "b.png")
    cert, key = make_local_signing_identity(root / "identity")
    settings = {"home": str(root / "archive"), "models_dir": str(shared_models),
                "signing_cert": str(cert), "signing_key": str(key)}
    summary = restore_batch(str(scans), settings=settings, sign=True)
    entry = summary["scans"][0]
    assert entry["outcome"] == "mastered", entry
    return {"root": root, "settings": settings, "entry": entry, "ca": root / "identity" / "ca.pem",
            "scans": scans}


def _audit(path: str, *extra: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["audit", path, "--from-file", "--json", *extra], env=env)


def test_masters_and_access_copies_are_signed_after_their_xmp(signed):
    for role in ("master", "access"):
        path = Path(signed["entry"][role])
        found = verify_file(path, trust_anchors=signed["ca"].read_text())
        assert found.status == "verified", (role, found.message)
        assert read_provenance(path).master["uuid"]  # the XMP survived signing
    with Catalog.open(f"sqlite:///{Path(signed['settings']['home']) / 'catalog.sqlite'}") as catalog:
        record = catalog.audit(master_path=signed["entry"]["master"])
    assert record is not None and record.master["sha256"] == sha256_file(Path(signed["entry"]["master"]))


def test_audit_from_file_reports_verified_untrusted_and_invalid(signed, tmp_path):
    untrusted = _audit(signed["entry"]["master"])
    assert untrusted.exit_code == 0, untrusted.output
    assert json.loads(untrusted.stdout)["content_credentials"]["status"] == "untrusted"
    trusted = _audit(signed["entry"]["master"], env={"RESTORIUM_SIGNING_TRUST_ANCHORS": str(signed["ca"])})
    assert json.loads(trusted.stdout)["content_credentials"]["status"] == "verified"

    changed = tmp_path / "changed.tif"
    data = bytearray(Path(signed["entry"]["master"]).read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit in the image data
    changed.write_bytes(bytes(data))
    text = CliRunner().invoke(app, ["audit", str(changed), "--from-file"])
    assert text.exit_code == 1, text.output
    assert "content credentials invalid" in " ".join(text.output.split())


def test_sign_without_an_identity_stops_before_the_run(signed, tmp_path, shared_models):
    with pytest.raises(RunPlanError, match="RESTORIUM_SIGNING_CERT"):
        restore_batch(str(signed["scans"]), settings={"home": str(tmp_path / "a"), "models_dir": str(shared_models)},
                      sign=True)


def test_a_run_without_sign_writes_no_manifest(signed, tmp_path, shared_models):
    summary = restore_batch(str(signed["scans"]), settings={"home": str(tmp_path / "plain"),
                                                          "models_dir": str(shared_models)})
    master = summary["scans"][0]["master"]
    assert verify_file(Path(master)).status == "absent"
    result = _audit(master)
    assert json.loads(result.stdout)["content_credentials"]["status"] == "absent"
