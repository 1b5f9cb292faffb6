"""Certificates, read and made with ``cryptography``: checks a user can act on, descriptions for
the startup log, and mkcert-like development certificates.

Everything a user can get wrong here (a missing file, a DER file, a key that belongs to another
certificate, an encrypted key) raises ``CertError`` whose text is one line the CLI prints as is.
Certificates are read with ``cryptography`` *before* OpenSSL sees them, because OpenSSL's own
errors ("[SSL] PEM lib (_ssl.c:3900)") tell the user nothing, and because OpenSSL would prompt
on the terminal for the password of an encrypted key, which a forked server must never do.

``cryptography`` weighs about 9 MB in a process, so the server's master never imports this
module: its checks run in a throwaway child (``server/forked.py``), and each worker builds its
SSLContext with ``tls.context`` from a snapshot of the files checked here (``tls.Snapshot``).

Development certificates follow mkcert's model: one local CA per user (``rootCA.pem`` and
``rootCA-key.pem`` in the CA root), made once and trusted once; a leaf certificate for
localhost (and any host names and addresses asked for) signed by it, kept by default beside the
CA so it is the same one whatever folder pushserve starts in, and remade silently whenever it is
missing, broken, signed by another CA, close to expiry or missing a name.  The leaf file carries
the CA certificate after the leaf, so a client told to trust the CA's public key (Chromium's
``--ignore-certificate-errors-spki-list``) finds it in the chain the server presents; that pin
holds for every certificate the CA signs, so it survives a renewed leaf.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import getpass
import hashlib
import ipaddress
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    PrivateKeyTypes,
    PublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pushserve import tls
from pushserve.tls import CA_CERT_NAME, CertError, default_caroot

__all__ = [
    "CertInfo",
    "DevCert",
    "check_pair",
    "describe_certificate",
    "dev_name",
    "ensure_dev_ca",
    "ensure_dev_cert",
    "server_context",
    "spki_sha256_b64",
    "trust_ca",
    "trust_instructions",
]

CA_KEY_NAME = "rootCA-key.pem"
LEAF_CERT_NAME = "localhost.pem"
LEAF_KEY_NAME = "localhost-key.pem"
LEAF_DNS_NAMES = ("localhost",)
LEAF_IP_ADDRESSES = ("127.0.0.1", "::1")

CA_LIFETIME = dt.timedelta(days=3650)
# Browsers reject leaf certificates valid for more than 398 days (counted not_before→not_after).
LEAF_LIFETIME = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)
# Certificates start a little in the past so a client whose clock lags does not see them as
# not yet valid.
BACKDATE = dt.timedelta(hours=1)

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)


# The key types a development CA may have (ours are EC; an RSA one from elsewhere also signs).
_IssuerKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


# --------------------------------------------------------------------------------------------
# Reading PEM files


@dataclass(frozen=True, slots=True)
class _Pem:
    path: Path
    certs: list[x509.Certificate]
    keys: list[bytes]  # PEM blocks of private keys, not yet parsed (they may need a password)
    labels: list[str]  # every block's label, for error messages


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise CertError(f"{what} {path} is a directory, not a file") from None
    except PermissionError:
        raise CertError(f"{what} {path} is not readable (permission denied)") from None
    except OSError as exc:
        raise CertError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _read_pem(path: Path, what: str) -> _Pem:
    data = _read_file(path, what)
    blocks = [(m.group(1).decode("ascii"), m.group(0)) for m in _PEM_BLOCK.finditer(data)]
    if not blocks:
        if data.startswith(b"\x30"):  # an ASN.1 SEQUENCE: almost surely DER
            tool, out = ("x509", "cert.pem") if what == "certificate file" else ("pkey", "key.pem")
            raise CertError(
                f"{what} {path} is DER, not PEM; convert it: openssl {tool} -inform der -in {path} -out {out}"
            )
        raise CertError(f"{what} {path} is not a PEM file (no '-----BEGIN' line)")
    certs: list[x509.Certificate] = []
    keys: list[bytes] = []
    for label, block in blocks:
        if label in ("CERTIFICATE", "TRUSTED CERTIFICATE"):
            try:
                certs.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                raise CertError(f"{what} {path} holds a corrupt certificate") from None
        elif label.endswith("PRIVATE KEY"):
            keys.append(block)
    return _Pem(path, certs, keys, [label for label, _ in blocks])


def _first_cert(pem: _Pem) -> x509.Certificate:
    if not pem.certs:
        found = ", ".join(dict.fromkeys(pem.labels))
        raise CertError(f"{pem.path} holds no certificate (it holds: {found})")
    return pem.certs[0]


def _load_key(block: bytes, path: Path, password: bytes | None) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(block, password)
    except TypeError:
        # cryptography says TypeError both for "encrypted, no password" and the reverse.
        if password is None:
            raise CertError(
                f"private key in {path} is encrypted and no password was given; "
                f"decrypt it with: openssl pkey -in {path} -out key.pem"
            ) from None
        raise CertError(f"private key in {path} is not encrypted, but a password was given") from None
    except UnsupportedAlgorithm:
        raise CertError(f"private key in {path} uses an unsupported algorithm") from None
    except ValueError:
        if password is not None:
            raise CertError(f"cannot decrypt the private key in {path}: wrong password?") from None
        raise CertError(f"private key in {path} is corrupt") from None


def _spki_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _cert_spki(cert: x509.Certificate) -> bytes:
    return _spki_der(cert.public_key())


def _check_key_matches(certs: list[x509.Certificate], key: PrivateKeyTypes, cert_path: Path,
                       key_path: Path) -> None:
    key_spki = _spki_der(key.public_key())
    if _cert_spki(certs[0]) == key_spki:
        return
    if any(_cert_spki(c) == key_spki for c in certs[1:]):
        raise CertError(
            f"certificates in {cert_path} are out of order: the server's own certificate (the one "
            f"matching the key) must come first, then its issuers"
        )
    raise CertError(
        f"private key {key_path} does not match certificate {cert_path} "
        f"({certs[0].subject.rfc4514_string() or 'no subject'})"
    )


# --------------------------------------------------------------------------------------------
# The server context


def check_pair(cert_file: Path, key_file: Path | None = None, *, password: bytes | None = None) -> None:
    """Raise CertError, in words a user can act on, unless the server can serve ``cert_file``
    (chain, leaf first) with ``key_file`` (or the key inside ``cert_file`` when ``key_file`` is
    None).  An expired certificate passes (a developer may want to test exactly that); call
    ``describe_certificate`` for the startup line and its ``warnings``."""
    server_context(cert_file, key_file, password=password)


def server_context(cert_file: Path, key_file: Path | None = None, *,
                   password: bytes | None = None) -> ssl.SSLContext:
    """``tls.context`` for the pair, once read here: OpenSSL sees only files that make a pair."""
    cert_file, key_path = Path(cert_file), Path(key_file) if key_file is not None else None
    cert_pem = _read_pem(cert_file, "certificate file")
    _first_cert(cert_pem)
    if key_path is None:
        if not cert_pem.keys:
            raise CertError(f"{cert_file} holds no private key; give the key file as well")
        key_block, key_origin = cert_pem.keys[0], cert_file
    else:
        key_pem = _read_pem(key_path, "key file")
        if not key_pem.keys:
            found = ", ".join(dict.fromkeys(key_pem.labels))
            raise CertError(f"key file {key_path} holds no private key (it holds: {found})")
        key_block, key_origin = key_pem.keys[0], key_path
    key = _load_key(key_block, key_origin, password)
    _check_key_matches(cert_pem.certs, key, cert_file, key_origin)
    return tls.context(cert_file, key_path, password=password)


# --------------------------------------------------------------------------------------------
# Describing a certificate


@dataclass(frozen=True, slots=True)
class CertInfo:
    subject: str  # RFC 4514, e.g. "CN=localhost,O=..."
    sans: tuple[str, ...]  # "DNS:localhost", "IP:127.0.0.1", ...
    not_after: dt.datetime  # UTC
    issuer: str
    not_before: dt.datetime
    self_signed: bool
    warnings: tuple[str, ...]  # one line each: expired, not yet valid, expiring soon, no SANs

    def line(self) -> str:
        """One line for the server's startup log."""
        names = " ".join(self.sans) or self.subject
        issuer = "self-signed" if self.self_signed else f"issued by {self.issuer}"
        return f"certificate for {names}, {issuer}, valid until {self.not_after:%Y-%m-%d}"


def _format_san(name: x509.GeneralName) -> str:
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    if isinstance(name, x509.RFC822Name):
        return f"email:{name.value}"
    if isinstance(name, x509.UniformResourceIdentifier):
        return f"URI:{name.value}"
    return type(name).__name__


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(_format_san(n) for n in ext.value)


def describe_certificate(path: Path, *, now: dt.datetime | None = None) -> CertInfo:
    """What the first certificate in ``path`` says, with warnings worth a startup line."""
    cert = _first_cert(_read_pem(Path(path), "certificate file"))
    now = now or dt.datetime.now(dt.UTC)
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    sans = _sans(cert)
    warnings: list[str] = []
    if not_after <= now:
        warnings.append(f"certificate {path} expired on {not_after:%Y-%m-%d %H:%M} UTC; clients refuse it")
    elif not_after - now <= RENEW_BEFORE:
        days = (not_after - now).days
        warnings.append(f"certificate {path} expires on {not_after:%Y-%m-%d}, in {days} days")
    if not_before > now:
        warnings.append(f"certificate {path} is not valid before {not_before:%Y-%m-%d %H:%M} UTC")
    if not sans:
        warnings.append(f"certificate {path} has no subjectAltName; browsers ignore its CN and refuse it")
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        sans=sans,
        not_after=not_after,
        issuer=cert.issuer.rfc4514_string(),
        not_before=not_before,
        self_signed=cert.issuer == cert.subject,
        warnings=tuple(warnings),
    )


def spki_sha256_b64(cert_file: Path) -> str:
    """Base64 SHA-256 of the first certificate's SubjectPublicKeyInfo: the form Chromium's
    ``--ignore-certificate-errors-spki-list`` takes (and HPKP's pin-sha256 used to).  Chromium
    matches it against every certificate in the chain the server sends, so the CA's pin (our
    leaf files carry the CA) accepts every leaf that CA signs."""
    cert = _first_cert(_read_pem(Path(cert_file), "certificate file"))
    return base64.b64encode(hashlib.sha256(_cert_spki(cert)).digest()).decode("ascii")


# --------------------------------------------------------------------------------------------
# Development CA and certificates


@dataclass(frozen=True, slots=True)
class DevCert:
    cert_file: Path  # leaf + CA
    key_file: Path
    ca_file: Path
    created: bool  # True when this call (re)made the leaf
    sans: tuple[str, ...] = ()  # the names the leaf covers: "DNS:localhost", "IP:127.0.0.1", ...
    removed: tuple[str, ...] = ()  # names the old leaf covered that this call took out


def _identity() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no passwd entry (containers)
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def _now() -> dt.datetime:
    # Whole seconds: certificate times have no fractions, and comparisons stay exact.
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialize dev-certificate work between processes (two `pushserve --dev` started at once
    would otherwise write a CA certificate and a CA key that do not belong together)."""
    try:
        fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise CertError(f"cannot lock {directory}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write through a temp file and rename, so a reader sees the old file or the new one,
    never half of one; the mode is set before any secret is written."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise CertError(f"cannot write in {path.parent}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CertError(f"cannot write {path}: {exc.strerror or exc}") from None


def _mkdir(path: Path, mode: int) -> None:
    try:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
    except OSError as exc:
        raise CertError(f"cannot create directory {path}: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise CertError(f"{path} is not a directory")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _try_load(cert_path: Path, key_path: Path) -> tuple[list[x509.Certificate], PrivateKeyTypes] | None:
    """The certificates and key in two files, or None when either is missing or unusable."""
    try:
        cert_pem = _read_pem(cert_path, "certificate file")
        key_pem = _read_pem(key_path, "key file")
        if not cert_pem.certs or not key_pem.keys:
            return None
        key = _load_key(key_pem.keys[0], key_path, None)
        _check_key_matches(cert_pem.certs, key, cert_path, key_path)
    except CertError:
        return None
    return cert_pem.certs, key


def _ca_usable(cert: x509.Certificate, now: dt.datetime) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return bc.ca and cert.not_valid_before_utc <= now and cert.not_valid_after_utc - now > RENEW_BEFORE


def _make_ca(now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    ident = _identity()
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pushserve development CA"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ident[:64]),
        # CN is capped at 64 characters by X.520.
        x509.NameAttribute(NameOID.COMMON_NAME, f"pushserve development CA {ident}"[:64]),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now - BACKDATE + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _ensure_ca(caroot: Path) -> tuple[Path, Path, x509.Certificate, _IssuerKey]:
    # Caller holds the lock on caroot.
    cert_path, key_path = caroot / CA_CERT_NAME, caroot / CA_KEY_NAME
    loaded = _try_load(cert_path, key_path)
    if loaded is not None:
        certs, key = loaded
        if _ca_usable(certs[0], _now()) and isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            return cert_path, key_path, certs[0], key
    cert, new_key = _make_ca(_now())
    # Key first: a reader that finds the new certificate also finds its key.
    _write_atomic(key_path, _key_pem(new_key), 0o600)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert_path, key_path, cert, new_key


def ensure_dev_ca(caroot: Path) -> tuple[Path, Path]:
    """Make the development CA in ``caroot`` unless a usable one is there; returns
    (ca_cert_file, ca_key_file).  A CA is remade only when its files are missing or broken or
    it is within 30 days of expiry (it lasts 10 years), since a new CA must be trusted anew."""
    caroot = Path(caroot)
    _mkdir(caroot, 0o700)
    with _locked(caroot):
        cert_path, key_path, _, _ = _ensure_ca(caroot)
    return cert_path, key_path


_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")


def dev_name(text: str) -> str:
    """A host name or IP address for the dev certificate, as a SAN string ("DNS:phone.local",
    "IP:192.168.1.20"); a wildcard ("*.example.test") is allowed as the first label only.
    Raises CertError with one line for anything else (a URL, a port, a stray character)."""
    ip_text = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return f"IP:{ipaddress.ip_address(ip_text)}"
    except ValueError:
        pass
    name = text.lower().rstrip(".")
    labels = name.split(".")
    if labels[0] == "*" and len(labels) > 2:
        labels = labels[1:]
    if "://" in text or "/" in text:
        hint = "a host name or address, not a URL"
    elif ":" in text:
        hint = "a host name or address without a port"
    elif len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        hint = "letters, digits and hyphens between dots, or an IP address"
    elif _NUMBER.fullmatch(labels[-1]):  # browsers read 999.1.1.1 or 10.1 as an IPv4 address
        hint = "an IP address (four numbers 0 to 255) or a host name whose last part is not a number"
    else:
        return f"DNS:{name}"
    raise CertError(f"{text!r} cannot go in a certificate: give {hint}")


BASE_SANS = tuple([f"DNS:{n}" for n in LEAF_DNS_NAMES]
                   + [f"IP:{ipaddress.ip_address(a)}" for a in LEAF_IP_ADDRESSES])


def _leaf_usable(certs: list[x509.Certificate], ca: x509.Certificate, now: dt.datetime,
                 wanted: set[str]) -> bool:
    leaf = certs[0]
    if not _issued_by(leaf, ca):
        return False
    if not leaf.not_valid_before_utc <= now or leaf.not_valid_after_utc - now <= RENEW_BEFORE:
        return False
    return wanted <= set(_sans(leaf))


def _issued_by(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _general_name(san: str) -> x509.GeneralName:
    kind, _, value = san.partition(":")
    return x509.IPAddress(ipaddress.ip_address(value)) if kind == "IP" else x509.DNSName(value)


def _make_leaf(ca_cert: x509.Certificate, ca_key: _IssuerKey, now: dt.datetime,
               sans: tuple[str, ...]) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pushserve development certificate"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _identity()[:64]),
        x509.NameAttribute(NameOID.COMMON_NAME, LEAF_DNS_NAMES[0]),
    ])
    try:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        )
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    not_before = now - BACKDATE
    # Never outlive the CA: a chain with an expired issuer fails even if the leaf is fresh.
    not_after = min(not_before + LEAF_LIFETIME, ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                          crl_sign=False, encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in sans]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(aki, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def ensure_dev_cert(cert_dir: Path | None = None, caroot: Path | None = None,
                    names: tuple[str, ...] = (), remove: tuple[str, ...] = ()) -> DevCert:
    """A localhost certificate in ``cert_dir`` (``localhost.pem`` = leaf + CA,
    ``localhost-key.pem``; default: the CA root itself, so every folder gets the same one),
    signed by the development CA in ``caroot`` (default ``default_caroot()``).

    It covers localhost, 127.0.0.1, ::1 and ``names`` (host names or addresses, see
    ``dev_name``).  Reused when present, readable, signed by the current CA, covering all those
    and valid for more than 30 more days; otherwise remade.  A remade leaf keeps the names the
    old one had (as long as the same CA signed it), so names asked for once stay covered, but
    for those in ``remove`` (localhost and the loopback addresses always stay)."""
    wanted = tuple(dict.fromkeys(BASE_SANS + tuple(dev_name(n) for n in names)))
    dropped = {dev_name(n) for n in remove}
    kept_always = dropped & set(BASE_SANS)
    if kept_always:
        raise CertError(f"{', '.join(sorted(kept_always))}: always in the development certificate")
    caroot = Path(caroot) if caroot is not None else default_caroot()
    cert_dir = Path(cert_dir) if cert_dir is not None else caroot
    _mkdir(caroot, 0o700)
    _mkdir(cert_dir, 0o755)
    cert_path, key_path = cert_dir / LEAF_CERT_NAME, cert_dir / LEAF_KEY_NAME
    removed: tuple[str, ...] = ()
    # One lock (the CA root's) covers both the CA and the leaf: the leaf's validity depends on
    # which CA is current.
    with _locked(caroot):
        ca_path, _, ca_cert, ca_key = _ensure_ca(caroot)
        loaded = _try_load(cert_path, key_path)
        if loaded is not None:
            old = loaded[0][0]
            if _leaf_usable(loaded[0], ca_cert, _now(), set(wanted)) and not dropped & set(_sans(old)):
                return DevCert(cert_path, key_path, ca_path, created=False, sans=_sans(old))
            if _issued_by(old, ca_cert):
                removed = tuple(n for n in _sans(old) if n in dropped)
                kept = tuple(n for n in _sans(old) if n.startswith(("DNS:", "IP:")) and n not in dropped)
                wanted = tuple(dict.fromkeys(wanted + kept))
        leaf, key = _make_leaf(ca_cert, ca_key, _now(), wanted)
        _write_atomic(key_path, _key_pem(key), 0o600)
        pem = serialization.Encoding.PEM
        _write_atomic(cert_path, leaf.public_bytes(pem) + ca_cert.public_bytes(pem), 0o644)
    return DevCert(cert_path, key_path, ca_path, created=True, sans=wanted, removed=removed)


# --------------------------------------------------------------------------------------------
# Trusting the CA


def trust_instructions(ca_file: Path, url: str = "https://localhost:8443/") -> str:
    """A few lines telling the user how to make browsers (and curl, for ``url``) trust the
    development CA."""
    ca_file = Path(ca_file)
    spki = spki_sha256_b64(ca_file)  # the CA is in the chain the server sends, so its SPKI works
    return "\n".join([
        f"To trust the pushserve development CA ({ca_file}):",
        "  - Chromium/Chrome on Linux: run `pushserve cert --trust` (adds it to ~/.pki/nssdb with "
        "certutil from libnss3-tools), then restart the browser.",
        "  - Or import it by hand: Chromium: Settings > Privacy and security > Security > Manage "
        "certificates > Authorities > Import; Firefox: Settings > Privacy & Security > View "
        "Certificates > Authorities > Import, tick 'Trust this CA to identify websites'.",
        "  - Or, for a throwaway Chromium profile: chromium --user-data-dir=/tmp/pushserve-chromium "
        f"--ignore-certificate-errors-spki-list={spki}",
        f"  - curl: curl --cacert {ca_file} {url}",
    ])


def _nss_nickname(cert: x509.Certificate) -> str:
    # The fingerprint tells a remade CA (same subject) apart from the old one in the db.
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else "pushserve development CA"
    return f"{cn} {cert.fingerprint(hashes.SHA256()).hex()[:8]}"


def _certutil(certutil: str, args: list[str],
              stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run([certutil, *args], input=stdin, capture_output=True, check=False)
    except OSError as exc:
        raise CertError(f"cannot run certutil: {exc.strerror or exc}") from None


def _last_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    text = (proc.stderr or proc.stdout).decode(errors="replace").strip()
    return text.splitlines()[-1] if text else f"exit status {proc.returncode}"


def trust_ca(ca_file: Path, nssdb: Path | None = None) -> str:
    """Add the CA in ``ca_file`` to an NSS database (default ``~/.pki/nssdb``, Chromium's on
    Linux; a Firefox profile directory works too) as trusted for TLS servers.  Creates the
    database if missing.  Idempotent.  Returns one line saying what happened."""
    ca_file = Path(ca_file)
    cert = _first_cert(_read_pem(ca_file, "CA file"))
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise CertError(f"{ca_file} is not a CA certificate")
    certutil = shutil.which("certutil")
    if certutil is None:
        raise CertError("certutil not found; install it (Debian/Ubuntu: apt install libnss3-tools; "
                        "Fedora: dnf install nss-tools)")
    db = Path(nssdb) if nssdb is not None else Path.home() / ".pki" / "nssdb"
    where = f"sql:{db}"
    if not (db / "cert9.db").exists():
        _mkdir(db, 0o700)
        proc = _certutil(certutil, ["-N", "--empty-password", "-d", where])
        if proc.returncode != 0:
            raise CertError(f"cannot create the NSS database {db}: {_last_line(proc)}")
    nick = _nss_nickname(cert)
    if _certutil(certutil, ["-L", "-d", where, "-n", nick]).returncode == 0:
        # Present already; re-assert the trust flags in case someone edited them.
        proc = _certutil(certutil, ["-M", "-d", where, "-n", nick, "-t", "C,,"])
        if proc.returncode != 0:
            raise CertError(f"certutil could not update {nick!r} in {db}: {_last_line(proc)}")
        return f"{nick!r} is already trusted in the NSS database {db}"
    # Fed through stdin as one PEM certificate, so a CA file holding more than that still works.
    proc = _certutil(certutil, ["-A", "-d", where, "-t", "C,,", "-n", nick, "-a"],
                     stdin=cert.public_bytes(serialization.Encoding.PEM))
    if proc.returncode != 0:
        raise CertError(f"certutil could not add {ca_file} to {db}: {_last_line(proc)}")
    return f"added {nick!r} to the NSS database {db}; restart the browser to use it"


_NSS_LISTING = re.compile(r"^(.*\S)\s+(\S*,\S*,\S*)\s*$")


def untrust_ca(ca_file: Path, nssdb: Path | None = None) -> str:
    """Take the development CA out of an NSS database (default ``~/.pki/nssdb``): this one and
    any earlier one of this user's that was remade (same name, another fingerprint), as
    ``mkcert -uninstall`` does.  The CA files stay.  Returns one line saying what happened."""
    cert = _first_cert(_read_pem(Path(ca_file), "CA file"))
    db = Path(nssdb) if nssdb is not None else Path.home() / ".pki" / "nssdb"
    if not (db / "cert9.db").exists():
        return f"no NSS database at {db}: nothing to untrust"
    certutil = shutil.which("certutil")
    if certutil is None:
        raise CertError("certutil not found; install it (Debian/Ubuntu: apt install libnss3-tools; "
                        "Fedora: dnf install nss-tools)")
    where = f"sql:{db}"
    listing = _certutil(certutil, ["-L", "-d", where])
    if listing.returncode != 0:
        raise CertError(f"certutil could not list {db}: {_last_line(listing)}")
    ours = _nss_nickname(cert).rsplit(" ", 1)[0] + " "  # the name without the fingerprint
    nicks = [m[1] for line in listing.stdout.decode(errors="replace").splitlines()
             if (m := _NSS_LISTING.match(line)) and m[1].startswith(ours)]
    for nick in nicks:
        proc = _certutil(certutil, ["-D", "-d", where, "-n", nick])
        if proc.returncode != 0:
            raise CertError(f"certutil could not remove {nick!r} from {db}: {_last_line(proc)}")
    if not nicks:
        return f"the development CA is not in the NSS database {db}: nothing to untrust"
    return (f"removed {', '.join(repr(n) for n in nicks)} from the NSS database {db}; restart the browser "
            f"(the CA files stay in {Path(ca_file).parent})")
