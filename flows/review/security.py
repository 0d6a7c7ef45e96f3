"""Who may use the review app, and which files a URL may reach.

- Loopback by default. Any other bind needs a shared secret (a token, or a password read from
  a file); then every request but the login page needs it: `Authorization: Bearer SECRET`, or
  the session cookie the login page sets (HttpOnly, SameSite=Strict, signed by a key that
  lives as long as the server). Anything else gets 401.
- On a loopback bind without a secret, the Host header must name the loopback (a page on
  another site cannot rebind its DNS name to 127.0.0.1 and drive the app).
- Every POST carries a CSRF token (an HMAC of the server's key), so another site's form cannot
  record a decision in a reviewer's browser.
- URLs name catalogued files by uuid. The only URL paths that become file paths are documents
  under the archive home's reports/ and reviews/ folders, resolved (symlinks included) and
  refused unless they stay inside that folder.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

SESSION_COOKIE = "restorium_session"
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve anywhere


def host_header_is_loopback(value: str) -> bool:
    """'127.0.0.1:8765', '[::1]:8765', 'localhost' → True."""
    value = value.strip()
    if value.startswith("["):
        end = value.find("]")
        return end > 0 and is_loopback(value[1:end])
    return is_loopback(value.split(":", 1)[0])


def read_secret(token: str | None, password_file: Path | None) -> str | None:
    """The shared secret from --token or --password-file (its first line); ValueError when unusable."""
    if token is not None and password_file is not None:
        raise ValueError("give --token or --password-file, not both")
    if password_file is not None:
        try:
            lines = Path(password_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"--password-file {password_file}: {exc.strerror or exc}") from exc
        token = lines[0].strip() if lines else ""
        if not token:
            raise ValueError(f"--password-file {password_file}: the first line (the password) is empty")
    if token is not None and len(token) < 12:
        raise ValueError("the token or password must have at least 12 characters")
    return token


def check_bind(host: str, secret: str | None) -> None:
    if not is_loopback(host) and secret is None:
        raise ValueError(
            f"--host {host} is not a loopback address: anyone who can reach it could approve masters. "
            "Give --token TOKEN or --password-file FILE (or keep the default 127.0.0.1)")


@dataclass
class Guard:
    """The server's secret (None: open, loopback only) and the per-process key signing its cookies."""

    secret: str | None
    loopback: bool
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def required(self) -> bool:
        return self.secret is not None

    def _sign(self, purpose: str) -> str:
        return hmac.new(self.key, purpose.encode(), hashlib.sha256).hexdigest()

    def session_value(self) -> str:
        return self._sign("session")

    def csrf_token(self) -> str:
        return self._sign("csrf")

    def secret_matches(self, given: str | None) -> bool:
        if self.secret is None or not given:
            return False
        return hmac.compare_digest(given.encode(), self.secret.encode())

    def authenticated(self, authorization: str | None, cookie: str | None) -> bool:
        if not self.required:
            return True
        if authorization and authorization.lower().startswith("bearer "):
            return self.secret_matches(authorization[7:].strip())
        return bool(cookie and hmac.compare_digest(cookie.encode(), self.session_value().encode()))

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given and hmac.compare_digest(given.encode(), self.csrf_token().encode()))


def safe_document(home: Path, rel: str, folders: tuple[str, ...] = ("reports", "reviews")) -> Path | None:
    """The file `rel` names under one of the home's document folders, or None: no absolute
    paths, no '..', no hidden or temporary files, and after resolving symlinks the file must
    still be inside that folder."""
    if not rel or "\x00" in rel or "\\" in rel or rel.startswith("/") or "%" in rel:
        return None
    parts = rel.split("/")
    if parts[0] not in folders or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    base = (Path(home) / parts[0]).resolve()
    try:
        target = (Path(home) / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(base) or not target.is_file():
        return None
    return target


def safe_next(value: str | None) -> str:
    """A redirect target after login: a path on this server only."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
