"""Content credentials (tasks.files.content_credentials): real masters and access copies, signed
with a locally issued certificate, verified with c2pa-python, tampered with, and left unsigned."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import cv2
import numpy as np
import pyexiv2
import pytest
import tifffile
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from PIL import Image, ImageCms

from tasks.files.atomic import sha256_file
from tasks.files.content_credentials import (
    SigningError,
    SigningIdentity,
    make_local_signing_identity,
    restoration_actions,
    sign_file,
    sign_written,
    verify_file,
)
from tasks.files.digest import file_pixel_digest
from tasks.files.tag import write_access, write_master
from tasks.files.xmp import (
    DST_ALGORITHMIC,
    DST_WITH_TRAINED_MODEL,
    digital_source_type,
    read_provenance,
    read_source_metadata,
)
from tasks.records.types import (
    INGESTION,
    METADATA_TAGGING,
    RESTORATION,
    UPSCALING,
    AgentInfo,
    AuditRecord,
    StepRecord,
    WrittenFile,
)

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
MASTER_UUID = "7d0e1c62-5f0a-4b8e-9a51-3c2d1e0f9a8b"
ACCESS_UUID = "8e1f2d73-6a1b-4c9f-8b62-4d3e2f1a0b9c"
SW = AgentInfo("software", "restorium", "0.1.0")
FFDNET = AgentInfo("model", "ffdnet_color", "", "FFDNet", "cd" * 32)
ESRGAN = AgentInfo("model", "realesr-general-x4v3", "", "SRVGGNetCompact", "ab" * 32)


@pytest.fixture(scope="module")
def local_identity(tmp_path_factory: pytest.TempPathFactory) -> tuple[SigningIdentity, str]:
    """A signing identity from make_local_signing_identity, and its CA's PEM (the trust anchor)."""
    folder = tmp_path_factory.mktemp("identity")
    chain, key = make_local_signing_identity(folder)
    assert key.stat().st_mode & 0o077 == 0  # the private key is the owner's only
    return SigningIdentity.from_files(chain, key), (folder / "ca.pem").read_text()


@pytest.fixture
def scan(shared_data: Path) -> Path:
    return shared_data / "old_photos" / "old" / "a.png"  # a real scanned old photo, only ever read


def make_record(original: Path) -> AuditRecord:
    access = {"format": "JPEG", "quality": 90, "long_edge": 2048}
    return AuditRecord(
        master={"uuid": MASTER_UUID},
        original={"uuid": "1c2d3e4f-0000-4000-8000-000000000001", "path": str(original),
                  "sha256": sha256_file(original), "item_uuid": "1c2d3e4f-0000-4000-8000-000000000002",
                  "identifier": "ACC-17"},
        derivation_key="f" * 64,
        recipe={"name": "archival", "hash": "e" * 64, "resolved": {"upscale": {"scale": 2.0}}, "plan_reasons": []},
        run={"uuid": "1c2d3e4f-0000-4000-8000-000000000003"},
        software={"name": "restorium", "version": "0.1.0"},
        models=[FFDNET, ESRGAN],
        steps=[
            StepRecord("1c2d3e4f-0000-4000-8000-0000000000a1", INGESTION, "ingest", "2024-05-01T10:00:00Z",
                       "success", "", [SW], {}),
            StepRecord("1c2d3e4f-0000-4000-8000-0000000000a2", RESTORATION, "levels", "2024-05-01T10:01:00Z",
                       "success", "levels 2-251", [SW], {"black": 2, "white": 251}),
            StepRecord("1c2d3e4f-0000-4000-8000-0000000000a3", RESTORATION, "denoise", "2024-05-01T10:02:00Z",
                       "success", "FFDNet at noise level 6.4", [SW, FFDNET], {"sigma": 6.4}),
            StepRecord("1c2d3e4f-0000-4000-8000-0000000000a4", UPSCALING, "upscale", "2024-05-01T10:05:00Z",
                       "success", "2x", [SW, ESRGAN], {"scale": 2.0}),
            StepRecord("1c2d3e4f-0000-4000-8000-0000000000a5", METADATA_TAGGING, "tag", "2024-05-01T10:06:00Z",
                       "success", "written", [SW], {"access": access}),
        ],
    )


def write_outputs(tmp_path: Path, scan: Path) -> tuple[AuditRecord, WrittenFile, WrittenFile]:
    """A real 16-bit master (a crop of the scan, 2x) and its access JPEG, with XMP provenance."""
    rgb = np.asarray(Image.open(scan).convert("RGB"))[100:148, 150:214]
    up = cv2.resize(rgb, (rgb.shape[1] * 2, rgb.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    pixels = up.astype(np.uint16) * 257
    record, source = make_record(scan), read_source_metadata(scan)
    master = write_master(tmp_path / "master.tif", pixels, None, icc=SRGB, ppi=600.0, compression="deflate",
                          record=record, source=source, uuid=MASTER_UUID, capture_ppi=300.0)
    access = write_access(tmp_path / "access.jpg", pixels, None, icc=SRGB, quality=90, long_edge=2048,
                          record=record, source=source, uuid=ACCESS_UUID, capture_ppi=300.0)
    return record, master, access


def provenance_facts(path: str) -> dict:
    """What an auditor rebuilds from the XMP alone, less the file's own sha256 (signing changes it)."""
    data = read_provenance(path).to_dict()
    data["master"].pop("sha256")
    return data


def sign(written: WrittenFile, record: AuditRecord, scan: Path, identity: SigningIdentity) -> WrittenFile:
    return sign_written(written, record, scan=scan, signing=identity, digital_source_type=digital_source_type(record))


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


# --- signed and verified ------------------------------------------------------------------------


def test_signed_master_verifies_and_keeps_its_xmp_pixels_and_icc(tmp_path: Path, scan: Path, local_identity) -> None:
    identity, ca_pem = local_identity
    record, master, _ = write_outputs(tmp_path, scan)
    before = provenance_facts(master.path)
    assert verify_file(Path(master.path)).status == "absent"

    signed = sign(master, record, scan, identity)

    # The catalog gets the signed file's identity; the pixels are the same pixels.
    assert signed.sha256 == sha256_file(master.path) != master.sha256
    assert signed.size == Path(master.path).stat().st_size > master.size
    assert file_pixel_digest(master.path) == master.pixel_sha256
    with tifffile.TiffFile(master.path) as tif:
        page = tif.pages.first
        assert page.tags["InterColorProfile"].value == SRGB
        assert page.tags["XResolution"].value == (600, 1)
        assert 52545 in page.tags  # the C2PA manifest, embedded in the TIFF itself (no sidecar)
    assert not list(tmp_path.glob(".*.partial"))
    # The XMP written before signing reads back the same.
    assert provenance_facts(master.path) == before

    # A locally issued certificate: the signature holds, the issuer is not trusted ...
    result = verify_file(Path(master.path))
    assert result.status == "untrusted", result.message
    assert "valid signature, untrusted issuer" in result.message
    assert result.codes == ("signingCredential.untrusted",)
    # ... until the institution's CA is trusted by the reader.
    trusted = verify_file(Path(master.path), trust_anchors=ca_pem)
    assert trusted.status == "verified", trusted.message
    assert trusted.codes == ()


def test_the_manifest_names_the_scan_the_models_and_the_recipe(tmp_path: Path, scan: Path, local_identity) -> None:
    identity, ca_pem = local_identity
    record, master, _ = write_outputs(tmp_path, scan)
    sign(master, record, scan, identity)
    manifest = verify_file(Path(master.path), trust_anchors=ca_pem).manifest
    assert manifest is not None

    (ingredient,) = manifest["ingredients"]
    assert (ingredient["title"], ingredient["relationship"], ingredient["format"]) == ("a.png", "parentOf", "image/png")
    assert ingredient["metadata"]["org.restorium.sha256"] == sha256_file(scan)
    (actions,) = [a["data"]["actions"] for a in manifest["assertions"] if a["label"].startswith("c2pa.actions")]
    assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.edited", "c2pa.edited", "c2pa.resized"]
    opened, levels, denoise, upscale = actions
    assert opened["parameters"]["org.restorium.original_sha256"] == sha256_file(scan)
    assert opened["parameters"]["ingredients"][0]["url"].endswith("c2pa.ingredient.v3")  # linked to the scan
    # A classical filter is an algorithmic enhancement; a trained model's output is a composite with it.
    assert "org.restorium.models" not in levels["parameters"]
    assert levels["digitalSourceType"] == DST_ALGORITHMIC
    assert denoise["digitalSourceType"] == upscale["digitalSourceType"] == DST_WITH_TRAINED_MODEL
    assert denoise["parameters"]["org.restorium.models"] == [
        {"name": "ffdnet_color", "architecture": "FFDNet", "weights_sha256": "cd" * 32}]
    assert upscale["parameters"]["org.restorium.models"][0]["weights_sha256"] == "ab" * 32
    assert {a["parameters"]["org.restorium.recipe_hash"] for a in actions[1:]} == {"e" * 64}
    assert upscale["softwareAgent"] == {"name": "restorium", "version": "0.1.0"}
    assert upscale["when"] == "2024-05-01T10:05:00Z"


def test_signed_access_copy_verifies_and_keeps_its_xmp_and_icc(tmp_path: Path, scan: Path, local_identity) -> None:
    identity, ca_pem = local_identity
    record, _, access = write_outputs(tmp_path, scan)
    before = provenance_facts(access.path)
    pixels_before = np.asarray(Image.open(access.path))

    signed = sign(access, record, scan, identity)

    assert signed.sha256 == sha256_file(access.path) != access.sha256
    assert provenance_facts(access.path) == before
    with Image.open(access.path) as img:
        assert img.info.get("icc_profile") == SRGB
        np.testing.assert_array_equal(np.asarray(img), pixels_before)  # the JPEG's scan data untouched
    result = verify_file(Path(access.path), trust_anchors=ca_pem)
    assert result.status == "verified", result.message
    assert result.manifest is not None
    (actions,) = [a["data"]["actions"] for a in result.manifest["assertions"] if a["label"].startswith("c2pa.actions")]
    assert actions[-1]["action"] == "c2pa.transcoded"
    assert "digitalSourceType" not in actions[-1]  # a format change, not an edit of what is shown
    assert actions[-1]["parameters"]["org.restorium.long_edge"] == 2048


def test_a_certificate_from_another_ca_stays_untrusted(tmp_path: Path, scan: Path, local_identity) -> None:
    identity, _ = local_identity
    make_local_signing_identity(tmp_path / "other")
    record, master, _ = write_outputs(tmp_path, scan)
    sign(master, record, scan, identity)
    result = verify_file(Path(master.path), trust_anchors=(tmp_path / "other" / "ca.pem").read_text())
    assert result.status == "untrusted", result.message


# --- tampered ---------------------------------------------------------------------------------


def test_one_byte_changed_in_the_master_image_data_fails_with_the_data_hash(tmp_path: Path, scan: Path,
                                                                           local_identity) -> None:
    identity, ca_pem = local_identity
    record, master, _ = write_outputs(tmp_path, scan)
    sign(master, record, scan, identity)
    with tifffile.TiffFile(master.path) as tif:
        offset = tif.pages.first.dataoffsets[0] + tif.pages.first.databytecounts[0] // 2
    flip_byte(Path(master.path), offset)

    for anchors in (None, ca_pem):  # a trusted signer does not make a changed file valid
        result = verify_file(Path(master.path), trust_anchors=anchors)
        assert result.status == "invalid", result.message
        assert "assertion.dataHash.mismatch" in result.codes
        assert "INVALID" in result.message and "changed after signing" in result.message
        assert "assertion.dataHash.mismatch" in result.message


def test_one_byte_changed_in_the_access_jpeg_scan_data_fails(tmp_path: Path, scan: Path, local_identity) -> None:
    identity, ca_pem = local_identity
    record, _, access = write_outputs(tmp_path, scan)
    sign(access, record, scan, identity)
    data = Path(access.path).read_bytes()
    start = data.rfind(b"\xff\xda")  # start of scan: entropy-coded data follows its header
    start += 2 + int.from_bytes(data[start + 2:start + 4], "big")
    # a byte in the middle of the scan data that stays clear of 0xFF (marker) bytes when flipped
    offset = next(i for i in range((start + len(data)) // 2, len(data) - 2)
                  if 0xFF not in (data[i - 1], data[i], data[i] ^ 0x01))
    flip_byte(Path(access.path), offset)

    result = verify_file(Path(access.path), trust_anchors=ca_pem)
    assert result.status == "invalid", result.message
    assert "assertion.dataHash.mismatch" in result.codes


def test_editing_the_xmp_after_signing_breaks_the_signature(tmp_path: Path, scan: Path, local_identity) -> None:
    """Why signing comes last: the data hash covers the XMP too."""
    identity, ca_pem = local_identity
    record, master, access = write_outputs(tmp_path, scan)
    for written in (master, access):
        sign(written, record, scan, identity)
        img = pyexiv2.Image(written.path)
        try:
            img.modify_xmp({"Xmp.dc.description": "edited later"})
        finally:
            img.close()
        result = verify_file(Path(written.path), trust_anchors=ca_pem)
        assert result.status == "invalid", result.message
        assert "assertion.dataHash.mismatch" in result.codes


def test_an_expired_certificate_without_a_timestamp_is_untrusted_not_tampered(tmp_path: Path, scan: Path) -> None:
    """Measured: with no timestamp authority, c2pa-rs judges the certificate at reading time."""
    record, _, access = write_outputs(tmp_path, scan)
    chain, key = make_local_signing_identity(tmp_path / "brief", valid_for=dt.timedelta(seconds=4))
    expires = x509.load_pem_x509_certificate(chain.read_bytes()).not_valid_after_utc
    sign(access, record, scan, SigningIdentity.from_files(chain, key))
    anchors = (tmp_path / "brief" / "ca.pem").read_text()
    assert verify_file(Path(access.path), trust_anchors=anchors).status == "verified"
    time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 1.5)

    result = verify_file(Path(access.path), trust_anchors=anchors)
    assert result.status == "untrusted", result.message
    assert "signingCredential.expired" in result.codes and "no trusted timestamp" in result.message


# --- unsigned -----------------------------------------------------------------------------------


def test_without_a_signing_identity_nothing_changes(tmp_path: Path, scan: Path) -> None:
    record, master, access = write_outputs(tmp_path, scan)
    before = {p: Path(p).read_bytes() for p in (master.path, access.path)}
    for written in (master, access):
        assert sign_written(written, record, scan=scan, signing=None,
                            digital_source_type=digital_source_type(record)) is written
    assert {p: Path(p).read_bytes() for p in before} == before
    for path in before:
        result = verify_file(Path(path))
        assert result.status == "absent" and result.manifest is None
        assert "unsigned" in result.message


# --- identities and inputs ------------------------------------------------------------------------


def test_a_key_that_does_not_match_the_certificate_is_refused(tmp_path: Path) -> None:
    chain, _ = make_local_signing_identity(tmp_path / "a")
    _, other_key = make_local_signing_identity(tmp_path / "b")
    with pytest.raises(SigningError, match="does not match"):
        SigningIdentity.from_files(chain, other_key)


def test_a_document_signing_only_certificate_is_refused_at_load(tmp_path: Path) -> None:
    """Measured: c2pa-rs 0.91 wants emailProtection (or timeStamping/OCSPSigning) in the EKU."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    usage = dict(digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                 key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False)
    cert = (x509.CertificateBuilder().subject_name(name("signer")).issuer_name(name("ca")).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(**usage), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    (tmp_path / "chain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    with pytest.raises(SigningError, match="EKU"):
        SigningIdentity.from_files(tmp_path / "chain.pem", tmp_path / "key.pem")


def test_an_unreadable_scan_is_described_by_its_sha256(tmp_path: Path, scan: Path, local_identity) -> None:
    identity, ca_pem = local_identity
    record, master, _ = write_outputs(tmp_path, scan)
    truncated = tmp_path / "scan.png"  # a PNG whose chunks c2pa-rs cannot parse
    truncated.write_bytes(scan.read_bytes()[:40])
    result = sign_file(Path(master.path), ingredient=truncated, actions=restoration_actions(record),
                       digital_source_type=digital_source_type(record), signing=identity,
                       ingredient_sha256=record.original["sha256"])
    assert result.notes and "described by its name and sha256" in result.notes[0]
    verified = verify_file(Path(master.path), trust_anchors=ca_pem)
    assert verified.status == "verified", verified.message
    assert verified.manifest is not None
    assert verified.manifest["label"] == result.manifest_label
    (ingredient,) = verified.manifest["ingredients"]
    assert (ingredient["title"], ingredient["format"]) == ("scan.png", "image/png")
    assert ingredient["metadata"]["org.restorium.sha256"] == record.original["sha256"]


def test_refuses_what_it_cannot_sign(tmp_path: Path, scan: Path, local_identity) -> None:
    identity, _ = local_identity
    record, master, _ = write_outputs(tmp_path, scan)
    png = tmp_path / "sheet.png"
    Image.new("RGB", (8, 8)).save(png)
    kwargs = dict(ingredient=scan, digital_source_type=digital_source_type(record), signing=identity)
    with pytest.raises(ValueError, match="TIFF and JPEG"):
        sign_file(png, actions=restoration_actions(record), **kwargs)
    with pytest.raises(ValueError, match="c2pa.opened"):
        sign_file(Path(master.path), actions=restoration_actions(record)[1:], **kwargs)
    with pytest.raises(ValueError, match="IPTC"):
        sign_file(Path(master.path), actions=restoration_actions(record),
                  **{**kwargs, "digital_source_type": "compositeWithTrainedAlgorithmicMedia"})
    assert verify_file(Path(master.path)).status == "absent"  # nothing was half-signed
