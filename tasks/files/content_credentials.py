"""Content credentials (C2PA): an opt-in signed manifest in masters and access copies.

A manifest (c2pa-python, the CAI's c2pa-rs underneath) says, under the institution's signature:
the file was opened from the scan (`c2pa.opened`, the scan as its parentOf ingredient, with its
sha256), then restored (`c2pa.edited`) and upscaled (`c2pa.resized`) by named software and models
(weights sha256, recipe hash), with the IPTC digital source type of each step; an access copy adds
`c2pa.transcoded`. It is embedded in the file itself: TIFF (tag 52545) and JPEG (APP11) both are.

Signing comes last, after pyexiv2 wrote the XMP: the manifest's data hash covers every byte
outside the manifest, XMP included, so editing the metadata afterwards breaks the signature, and
the manifest edits no XMP, so `read_provenance` reads the same record before and after.

Trust is separate from integrity. A certificate issued by the institution's own CA (or by
`make_local_signing_identity`) verifies cryptographically but is not on the C2PA trust list:
`verify_file` calls that "untrusted" (public viewers show it as an unknown signer), "verified"
only when the chain ends at an anchor the reader was given. Measured with c2pa-rs 0.91.3: the
signing certificate must carry the emailProtection (or timeStamping / OCSPSigning) extended key
usage; documentSigning alone, and the C2PA claim-signing EKU, are refused as "missing required EKU".
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image

from config.version import SOFTWARE_NAME, software_version
from tasks.files.atomic import atomic_write, sha256_file
from tasks.files.xmp import DST_ALGORITHMIC, DST_WITH_TRAINED_MODEL
from tasks.records.types import METADATA_TAGGING, RESTORATION, UPSCALING, AuditRecord, StepRecord, WrittenFile

_DST_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
_LABEL = re.compile(rb"urn:c2pa:[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")
_INGREDIENT = "scan"  # the scan's label inside the manifest, referenced by c2pa.opened
_NS = "org.restorium."  # prefix of our own action parameters (C2PA asks for reverse-domain names)
# Reading never reaches out: no remote manifests, no OCSP (archives verify offline).
_OFFLINE = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
# No thumbnails: a master is a preservation file, and a thumbnail of a 16-bit 400 MP TIFF costs memory.
_BUILD = {"builder": {"thumbnail": {"enabled": False}}, **_OFFLINE}
# Actions that describe no change to what the picture shows: no digital source type of their own.
_NON_EDITORIAL = frozenset({"c2pa.opened", "c2pa.transcoded"})
# Codes about who signed (trust list, expiry, revocation), not about whether anything changed.
_CREDENTIAL_CODES = ("signingCredential.", "timeStamp.")
_EXPLAINED = {
    "assertion.dataHash.mismatch": "the file's bytes changed after signing (the data hash no longer matches)",
    "claimSignature.mismatch": "the manifest's claim changed after signing (its signature no longer matches)",
    "assertion.hashedURI.mismatch": "an assertion changed after signing (its hash in the claim no longer matches)",
    # Without a trusted timestamp the certificate is judged at the time of reading (measured).
    "signingCredential.expired": "the signing certificate has expired and the manifest has no trusted timestamp",
    "signingCredential.revoked": "the signing certificate was revoked",
}


class SigningError(ValueError):
    """A signing identity that cannot sign (unreadable, mismatched or refused certificate)."""


@dataclass(frozen=True)
class SigningIdentity:
    """The institution's signing certificate chain (PEM, end-entity first) and private key (PEM)."""

    cert_chain: bytes
    private_key: bytes = field(repr=False)
    alg: str = "es256"  # es256/384/512, ps256/384/512, ed25519: from the key (`from_files`)
    tsa_url: str | None = None  # RFC 3161 timestamp authority: keeps signatures valid after the cert expires

    @classmethod
    def from_files(cls, cert_chain: Path, private_key: Path, *, tsa_url: str | None = None) -> SigningIdentity:
        """Load and check a chain and key; SigningError says what is wrong before any scan is signed."""
        try:
            chain, key_pem = Path(cert_chain).read_bytes(), Path(private_key).read_bytes()
        except OSError as exc:
            raise SigningError(f"cannot read the signing certificate or key: {exc}") from exc
        try:
            certs = x509.load_pem_x509_certificates(chain)
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise SigningError(f"{cert_chain} / {private_key}: not a PEM certificate chain and "
                               f"unencrypted PEM private key: {exc}") from exc
        if key.public_key().public_bytes(*_SPKI) != certs[0].public_key().public_bytes(*_SPKI):
            raise SigningError(f"{private_key} does not match the first certificate in {cert_chain} "
                               f"({certs[0].subject.rfc4514_string()})")
        identity = cls(chain, key_pem, _alg_for(key), tsa_url)
        check_identity(identity)
        return identity


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _alg_for(key: Any) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algs = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in algs:
            return algs[key.curve.name]
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    elif isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    raise SigningError(f"unsupported signing key type {type(key).__name__} (C2PA signs with ECDSA P-256/384/521, "
                       "RSA-PSS or Ed25519)")


def check_identity(identity: SigningIdentity) -> None:
    """Sign a tiny in-memory JPEG: c2pa-rs checks the certificate profile (key usage, EKU, validity)
    when it verifies after signing, so a refused certificate fails here, once, not on every scan."""
    probe = io.BytesIO()
    Image.new("RGB", (8, 8)).save(probe, "JPEG")
    probe.seek(0)
    manifest = _manifest("probe.jpg", [_with_ingredient({"action": "c2pa.opened"})],
                         {"title": "probe", "format": "image/jpeg", "relationship": "parentOf", "label": _INGREDIENT})
    try:
        _sign_stream(manifest, identity, "image/jpeg", probe, io.BytesIO(), ingredient=None)
    except c2pa.C2paError as exc:
        raise SigningError(f"the signing certificate cannot sign content credentials: {exc}") from exc


@dataclass(frozen=True)
class SignResult:
    path: str
    sha256: str  # of the signed file: it replaces the unsigned file's in the catalog
    size: int
    manifest_label: str  # urn:c2pa:… of the manifest just signed
    notes: tuple[str, ...] = ()  # e.g. the scan could not be read as an ingredient, so it is described


@dataclass(frozen=True)
class Verification:
    status: Literal["verified", "untrusted", "invalid", "absent"]
    message: str
    manifest: dict[str, Any] | None  # the active manifest as c2pa-python reads it
    codes: tuple[str, ...] = ()  # the failure codes of the active manifest (C2PA validation status codes)


# --- actions -----------------------------------------------------------------------------------


def restoration_actions(record: AuditRecord, *, role: Literal["master", "access"] = "master") -> list[dict[str, Any]]:
    """The C2PA actions of a file made from `record`: `c2pa.opened` (the scan, by sha256), one
    `c2pa.edited` per restoration step and `c2pa.resized` per upscale, each naming its software,
    models (weights sha256) and the recipe hash, with the IPTC digital source type of what it did
    (a trained model's output composited into the scan, or a classical enhancement). Steps that
    changed no pixels (ingest, QA, digest) stay in the XMP history only. An access copy adds
    `c2pa.transcoded` (8-bit JPEG at its size, from the tag step's parameters)."""
    recipe_hash = record.recipe.get("hash", "")
    opened: dict[str, Any] = {"action": "c2pa.opened", "parameters": {
        f"{_NS}original_sha256": record.original.get("sha256", ""),
        f"{_NS}original_uuid": record.original.get("uuid", ""),
        f"{_NS}derivation_key": record.derivation_key,
    }}
    actions = [opened]
    for step in record.steps:
        label = {RESTORATION: "c2pa.edited", UPSCALING: "c2pa.resized"}.get(step.type)
        if label:
            actions.append(_step_action(label, step, record, recipe_hash))
    if role == "access":
        tag = next((s for s in reversed(record.steps) if s.type == METADATA_TAGGING), None)
        access = dict((tag.parameters.get("access") or {}) if tag else {})
        actions.append({"action": "c2pa.transcoded", "description": "access copy: 8-bit JPEG of the master",
                        "parameters": {f"{_NS}{k}": v for k, v in access.items()}})
    return actions


def _step_action(label: str, step: StepRecord, record: AuditRecord, recipe_hash: str) -> dict[str, Any]:
    models = [m for m in step.agents if m.kind == "model"]
    software = next((a for a in step.agents if a.kind == "software"), None)
    params: dict[str, Any] = {f"{_NS}step": step.step, f"{_NS}event": step.event_uuid,
                              f"{_NS}recipe_hash": recipe_hash}
    if models:
        params[f"{_NS}models"] = [{"name": m.name, "architecture": m.architecture,
                                   "weights_sha256": m.weights_sha256} for m in models]
    action: dict[str, Any] = {
        "action": label,
        "softwareAgent": {"name": software.name if software else record.software.get("name", SOFTWARE_NAME),
                          "version": software.version if software else record.software.get("version", "")},
        "description": f"{step.step}: {step.detail}" if step.detail else step.step,
        # Per step: only what a trained model made is trained-algorithmic media (tasks.files.xmp).
        "digitalSourceType": DST_WITH_TRAINED_MODEL if models else DST_ALGORITHMIC,
        "parameters": params,
    }
    if step.when:
        action["when"] = step.when
    return action


# --- signing -----------------------------------------------------------------------------------


def sign_written(
    written: WrittenFile, record: AuditRecord, *, scan: Path | None, signing: SigningIdentity | None,
    digital_source_type: str,
) -> WrittenFile:
    """Sign a master or access copy just written, and return it with the signed file's sha256 and
    size; without a signing identity, return it untouched (nothing is read or written)."""
    if signing is None:
        return written
    role: Literal["master", "access"] = "access" if written.role == "access" else "master"
    result = sign_file(Path(written.path), ingredient=scan, actions=restoration_actions(record, role=role),
                       digital_source_type=digital_source_type, signing=signing,
                       ingredient_sha256=str(record.original.get("sha256", "")))
    return replace(written, sha256=result.sha256, size=result.size)


def sign_file(
    path: Path, *, ingredient: Path | None, actions: list[dict[str, Any]], digital_source_type: str,
    signing: SigningIdentity, ingredient_sha256: str = "",
) -> SignResult:
    """Embed a signed manifest into the TIFF or JPEG at `path`, in place and atomically (a signed
    temporary sibling renamed over it). `ingredient` is the scan: read as the parentOf ingredient
    (so a scan that carries its own credentials chains to them); when it is None or unreadable it
    is described by its name and `ingredient_sha256`. `digital_source_type` (an IPTC NewsCodes
    URI, tasks.files.xmp.digital_source_type) goes on every editorial action that names none
    (`restoration_actions` names one per step)."""
    path = Path(os.path.abspath(path))
    mime = _sniff(path)
    if mime not in ("image/tiff", "image/jpeg"):
        raise ValueError(f"{path}: content credentials are signed into TIFF and JPEG files only, not {mime}")
    if not digital_source_type.startswith(_DST_PREFIX):
        raise ValueError(f"{path}: {digital_source_type!r} is not an IPTC digital source type ({_DST_PREFIX}…)")
    if not actions or actions[0].get("action") != "c2pa.opened":
        raise ValueError(f"{path}: the first action must be c2pa.opened (the scan this file was made from)")
    if ingredient is not None and not ingredient_sha256:
        ingredient_sha256 = sha256_file(ingredient)
    described = {"title": ingredient.name if ingredient else "original scan", "relationship": "parentOf",
                 "label": _INGREDIENT, "metadata": {f"{_NS}sha256": ingredient_sha256},
                 "format": _sniff(ingredient) if ingredient and ingredient.is_file() else "application/octet-stream"}
    linked = [_with_ingredient(actions[0])] + [
        a if a.get("digitalSourceType") or a.get("action") in _NON_EDITORIAL
        else {**a, "digitalSourceType": digital_source_type} for a in actions[1:]]
    notes: list[str] = []
    facts: dict[str, Any] = {}

    def fill(temp: Path) -> None:
        nonlocal notes
        with open(path, "rb") as source, open(temp, "w+b") as dest:
            try:
                facts["bytes"] = _sign_from_scan(path.name, linked, described, signing, mime, source, dest, ingredient)
            except _ScanUnreadable as exc:  # the scan's own bytes could not be parsed: describe it instead
                notes = [f"the scan could not be read as a C2PA ingredient ({exc.__cause__}); it is described "
                         "by its name and sha256"]
                source.seek(0)
                dest.seek(0)
                dest.truncate()
                manifest = _manifest(path.name, linked, described)
                facts["bytes"] = _sign_stream(manifest, signing, mime, source, dest, ingredient=None)
        facts["sha256"], facts["size"] = sha256_file(temp), temp.stat().st_size

    try:
        atomic_write(path, fill)
    except c2pa.C2paError as exc:
        raise SigningError(f"{path}: signing content credentials failed: {exc}") from exc
    # The manifest store just signed names its manifest (the JUMBF box label): no second read of the file.
    label = _LABEL.search(facts["bytes"])
    return SignResult(path=str(path), sha256=str(facts["sha256"]), size=int(facts["size"]),
                      manifest_label=label.group().decode() if label else "", notes=tuple(notes))


class _ScanUnreadable(Exception):
    pass


def _sign_from_scan(title: str, actions: list[dict[str, Any]], described: dict[str, Any], signing: SigningIdentity,
                    mime: str, source: Any, dest: Any, scan: Path | None) -> bytes:
    if scan is None:
        return _sign_stream(_manifest(title, actions, described), signing, mime, source, dest, ingredient=None)
    try:
        scan_stream = open(scan, "rb")
    except OSError as exc:  # moved or unreadable since it was processed: described, not read
        raise _ScanUnreadable(str(exc)) from exc
    with scan_stream:
        return _sign_stream(_manifest(title, actions, None), signing, mime, source, dest,
                            ingredient=({k: v for k, v in described.items() if k != "format"}, described["format"],
                                        scan_stream))


def _with_ingredient(opened: dict[str, Any]) -> dict[str, Any]:
    params = dict(opened.get("parameters") or {})
    params["ingredientIds"] = [_INGREDIENT]
    return {**opened, "parameters": params}


def _manifest(title: str, actions: list[dict[str, Any]], ingredient: dict[str, Any] | None) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "claim_generator_info": [{"name": SOFTWARE_NAME, "version": software_version()}],
        "title": title,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}],
    }
    if ingredient is not None:  # described in the manifest; else added from the scan's bytes
        manifest["ingredients"] = [ingredient]
    return manifest


def _sign_stream(manifest: dict[str, Any], signing: SigningIdentity, mime: str, source: Any, dest: Any,
                 *, ingredient: tuple[dict[str, Any], str, Any] | None) -> bytes:
    info = c2pa.C2paSignerInfo(signing.alg, signing.cert_chain, signing.private_key, signing.tsa_url)
    with c2pa.Signer.from_info(info) as signer, \
            c2pa.Builder(manifest, context=c2pa.Context.from_dict(_BUILD)) as builder:
        if ingredient is not None:
            definition, fmt, stream = ingredient
            try:
                builder.add_ingredient(definition, fmt, stream)
            except c2pa.C2paError as exc:
                raise _ScanUnreadable(str(exc)) from exc
        return bytes(builder.sign(signer, mime, source, dest))


# --- verifying ---------------------------------------------------------------------------------


def verify_file(path: Path, *, trust_anchors: str | None = None) -> Verification:
    """Read and validate a file's content credentials, offline. `trust_anchors` (PEM: the
    institution's CA, settings' signing trust anchors) are trusted besides the library's own list.

    verified: signature, data hash and assertions valid, chain ends at a trusted anchor;
    untrusted: all of that valid, but the issuer is not trusted (a locally issued certificate);
    invalid: something changed after signing (message names the failed check), or unreadable;
    absent: no manifest (an unsigned file)."""
    path = Path(os.path.abspath(path))
    settings: dict[str, Any] = dict(_OFFLINE)
    if trust_anchors:
        settings["trust"] = {"user_anchors": trust_anchors}
    try:
        with open(path, "rb") as f:
            reader = c2pa.Reader.try_create(_sniff(path), f, None, c2pa.Context.from_dict(settings))
            if reader is None:
                return Verification("absent", f"{path}: no content credentials (unsigned)", None)
            with reader:
                state = reader.get_validation_state() or ""
                results = reader.get_validation_results() or {}
                manifest = reader.get_active_manifest()
    except c2pa.C2paError as exc:
        return Verification("invalid", f"{path}: content credentials unreadable: {exc}", None)
    failures = (results.get("activeManifest") or {}).get("failure") or []
    codes = tuple(dict.fromkeys(str(f.get("code", "")) for f in failures))
    signer = _signer(manifest)
    broken = [f for f in failures if not str(f.get("code", "")).startswith(_CREDENTIAL_CODES)]
    if broken or (state == "Invalid" and not failures):
        return Verification("invalid", f"{path}: content credentials INVALID: {_why(broken) or state}",
                            manifest, codes)
    if state == "Trusted":
        return Verification("verified", f"{path}: content credentials verified: signed by {signer}, "
                            "a trusted issuer", manifest, codes)
    # Intact, but who signed cannot be trusted: not on a trust list, or expired or revoked.
    other = [f for f in failures if f.get("code") != "signingCredential.untrusted"]
    why = _why(other) or ("its certificate does not chain to a trusted anchor (the C2PA trust list or the "
                          "configured trust anchors)")
    return Verification("untrusted", f"{path}: valid signature, untrusted issuer: signed by {signer}; {why}; "
                        "the file is unchanged since it was signed", manifest, codes)


def _why(failures: list[dict[str, Any]]) -> str:
    return "; ".join(dict.fromkeys(
        f"{f.get('code')}: {_EXPLAINED.get(str(f.get('code')), f.get('explanation', ''))}" for f in failures))


def _signer(manifest: dict[str, Any] | None) -> str:
    info = (manifest or {}).get("signature_info") or {}
    names = [str(info[k]) for k in ("common_name", "issuer") if info.get(k)]
    return ", ".join(names) or "an unnamed signer"


def _sniff(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(12)
    if head[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return "application/octet-stream"


# --- a local signing identity for trials -------------------------------------------------------


def make_local_signing_identity(folder: Path, *, organization: str = "restorium trial",
                                valid_for: dt.timedelta = dt.timedelta(days=5 * 365)) -> tuple[Path, Path]:
    """Write a local CA (`ca.pem`) and an ES256 signing certificate it issued (`chain.pem`, the
    end-entity certificate) with its key (`key.pem`, owner-only) into `folder`; return the chain's
    and the key's paths. For trials: what it signs verifies, but shows as an unknown signer in
    public viewers unless they trust `ca.pem` (`verify_file(trust_anchors=…)` does). Without a
    timestamp authority its signatures stop verifying as trusted once `valid_for` has passed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(organization, f"{organization} local CA")
    ca = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, now, valid_for + dt.timedelta(days=1), ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    ee = _certificate(_name(organization, f"{organization} content credentials"), ca_name, key.public_key(),
                      ca_key, now, valid_for, ca=False)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    chain, key_path = folder / "chain.pem", folder / "key.pem"
    chain.write_bytes(ee.public_bytes(pem))
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return chain, key_path


def _name(organization: str, common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
                 issuer_key: ec.EllipticCurvePrivateKey, now: dt.datetime, valid_for: dt.timedelta, *,
                 ca: bool) -> x509.Certificate:
    # The C2PA certificate profile: v3, key usage critical (digitalSignature for the signer;
    # keyCertSign for the CA), basic constraints, and an end entity with a C2PA-accepted EKU.
    usage = dict(digital_signature=not ca, content_commitment=False, key_encipherment=False, data_encipherment=False,
                 key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + valid_for)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
               .add_extension(x509.KeyUsage(**usage), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
    if not ca:
        builder = (builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                  critical=False))
    return builder.sign(issuer_key, hashes.SHA256())
