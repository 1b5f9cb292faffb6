"""pushserve.tls: dev CA and certificates, the server context, error lines, NSS trust."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pushserve import certificates, tls
from pushserve.tls import CertError

PEM = serialization.Encoding.PEM


# ---------------------------------------------------------------------------------------------
# helpers


def load_certs(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def key_pem(key: ec.EllipticCurvePrivateKey, password: bytes | None = None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, enc)


def make_cert(key: ec.EllipticCurvePrivateKey, *, issuer_key: ec.EllipticCurvePrivateKey | None = None,
              issuer_name: x509.Name | None = None, not_before: dt.datetime, not_after: dt.datetime,
              sans: bool = True) -> x509.Certificate:
    """A test certificate built independently of pushserve.tls (self-signed unless an issuer
    is given)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def dev(tmp_path: Path) -> certificates.DevCert:
    return certificates.ensure_dev_cert(tmp_path / "certs", tmp_path / "ca")


def one_line(exc: pytest.ExceptionInfo[CertError]) -> str:
    text = str(exc.value)
    assert text and "\n" not in text
    return text


# ---------------------------------------------------------------------------------------------
# development CA and certificates


def test_ensure_dev_cert_creates_files(tmp_path: Path) -> None:
    result = certificates.ensure_dev_cert(tmp_path / "certs", tmp_path / "ca")
    assert result.created
    assert result.cert_file == tmp_path / "certs" / "localhost.pem"
    assert result.key_file == tmp_path / "certs" / "localhost-key.pem"
    assert result.ca_file == tmp_path / "ca" / "rootCA.pem"
    for path in (result.cert_file, result.key_file, result.ca_file, tmp_path / "ca" / "rootCA-key.pem"):
        assert path.is_file()
    assert stat.S_IMODE(result.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca" / "rootCA-key.pem").stat().st_mode) == 0o600
    # no temp files left behind
    assert not [p for p in (tmp_path / "certs").iterdir() if p.name.endswith(".tmp")]


def test_second_call_reuses(tmp_path: Path, dev: certificates.DevCert) -> None:
    before = (dev.cert_file.read_bytes(), dev.key_file.read_bytes(), dev.ca_file.read_bytes())
    again = certificates.ensure_dev_cert(tmp_path / "certs", tmp_path / "ca")
    assert not again.created
    assert (again.cert_file.read_bytes(), again.key_file.read_bytes(), again.ca_file.read_bytes()) == before


def test_ca_properties(dev: certificates.DevCert) -> None:
    (ca,) = load_certs(dev.ca_file)
    assert ca.subject == ca.issuer
    cn = ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str) and cn.startswith("pushserve development CA ") and "@" in cn
    bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    assert ca.not_valid_after_utc - ca.not_valid_before_utc >= dt.timedelta(days=3649)
    ca_key = serialization.load_pem_private_key(dev.ca_file.with_name("rootCA-key.pem").read_bytes(), None)
    assert ca_key.public_key() == ca.public_key()


def test_leaf_sans_usage_and_validity(dev: certificates.DevCert) -> None:
    leaf, ca = load_certs(dev.cert_file)  # leaf first, then the CA
    assert ca.public_bytes(PEM) == dev.ca_file.read_bytes()
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(sans.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"),
    }
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=397)
    assert leaf.not_valid_before_utc <= now() < leaf.not_valid_after_utc
    assert load_key(dev.key_file).public_key() == leaf.public_key()


def test_leaf_signature_verifies_with_ca_key(dev: certificates.DevCert) -> None:
    leaf = load_certs(dev.cert_file)[0]
    ca_key = load_key(dev.ca_file.with_name("rootCA-key.pem"))
    assert leaf.signature_hash_algorithm is not None
    # raises InvalidSignature on failure
    ca_key.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
                               ec.ECDSA(leaf.signature_hash_algorithm))
    leaf.verify_directly_issued_by(load_certs(dev.ca_file)[0])


def test_leaf_from_another_ca_is_replaced(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    first = certificates.ensure_dev_cert(certs, tmp_path / "ca-a")
    old_leaf = first.cert_file.read_bytes()
    second = certificates.ensure_dev_cert(certs, tmp_path / "ca-b")
    assert second.created
    assert second.cert_file.read_bytes() != old_leaf
    leaf = load_certs(second.cert_file)[0]
    leaf.verify_directly_issued_by(load_certs(tmp_path / "ca-b" / "rootCA.pem")[0])
    # and back again: a-signed leaf is now foreign, so it is remade once more
    assert certificates.ensure_dev_cert(certs, tmp_path / "ca-a").created


def test_leaf_expiring_soon_is_replaced(tmp_path: Path, dev: certificates.DevCert) -> None:
    ca = load_certs(dev.ca_file)[0]
    ca_key = load_key(dev.ca_file.with_name("rootCA-key.pem"))
    key = ec.generate_private_key(ec.SECP256R1())
    short = make_cert(key, issuer_key=ca_key, issuer_name=ca.subject,
                      not_before=now() - dt.timedelta(days=300), not_after=now() + dt.timedelta(days=10))
    dev.cert_file.write_bytes(short.public_bytes(PEM) + ca.public_bytes(PEM))
    dev.key_file.write_bytes(key_pem(key))
    again = certificates.ensure_dev_cert(tmp_path / "certs", tmp_path / "ca")
    assert again.created
    assert load_certs(again.cert_file)[0].not_valid_after_utc - now() > dt.timedelta(days=300)


@pytest.mark.parametrize("damage", ["delete-key", "delete-cert", "garbage-cert", "other-key"])
def test_broken_leaf_is_replaced(tmp_path: Path, dev: certificates.DevCert, damage: str) -> None:
    if damage == "delete-key":
        dev.key_file.unlink()
    elif damage == "delete-cert":
        dev.cert_file.unlink()
    elif damage == "garbage-cert":
        dev.cert_file.write_bytes(b"not a certificate\n")
    else:
        dev.key_file.write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    again = certificates.ensure_dev_cert(tmp_path / "certs", tmp_path / "ca")
    assert again.created
    certificates.server_context(again.cert_file, again.key_file)  # the pair loads again


def test_ca_is_made_once(tmp_path: Path) -> None:
    cert_a, key_a = certificates.ensure_dev_ca(tmp_path / "ca")
    data = (cert_a.read_bytes(), key_a.read_bytes())
    cert_b, key_b = certificates.ensure_dev_ca(tmp_path / "ca")
    assert (cert_b, key_b) == (cert_a, key_a)
    assert (cert_b.read_bytes(), key_b.read_bytes()) == data
    assert stat.S_IMODE((tmp_path / "ca").stat().st_mode) == 0o700


def test_concurrent_callers_agree(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: certificates.ensure_dev_cert(tmp_path / "certs", tmp_path / "ca"), range(8)))
    assert sum(r.created for r in results) == 1
    leaf = load_certs(results[0].cert_file)[0]
    leaf.verify_directly_issued_by(load_certs(results[0].ca_file)[0])
    assert load_key(results[0].key_file).public_key() == leaf.public_key()


def test_default_caroot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PUSHSERVE_CAROOT", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert tls.default_caroot() == tmp_path / "explicit"
    monkeypatch.delenv("PUSHSERVE_CAROOT")
    assert tls.default_caroot() == tmp_path / "xdg" / "pushserve"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert tls.default_caroot() == tmp_path / "home" / ".local" / "share" / "pushserve"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert tls.default_caroot() == tmp_path / "home" / ".local" / "share" / "pushserve"


def test_ensure_dev_cert_uses_default_caroot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PUSHSERVE_CAROOT", str(tmp_path / "envca"))
    result = certificates.ensure_dev_cert(tmp_path / "certs")
    assert result.ca_file == tmp_path / "envca" / "rootCA.pem"


def test_unwritable_cert_dir_is_a_cert_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CertError) as exc:
        certificates.ensure_dev_cert(blocker / "certs", tmp_path / "ca")
    assert "cannot create directory" in one_line(exc)


# ---------------------------------------------------------------------------------------------
# server_context


def test_server_context_settings(dev: certificates.DevCert) -> None:
    ctx = certificates.server_context(dev.cert_file, dev.key_file)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.options & ssl.OP_NO_COMPRESSION
    assert ctx.options & ssl.OP_NO_RENEGOTIATION
    ciphers = ctx.get_ciphers()
    tls12 = [c for c in ciphers if c["protocol"] == "TLSv1.2"]
    assert tls12
    for c in ciphers:
        assert c["aead"], c["name"]
        if c["protocol"] != "TLSv1.3":
            assert c["kea"] == "kx-ecdhe", c["name"]
    # RFC 9113 §9.2.2 mandatory suite
    assert "ECDHE-RSA-AES128-GCM-SHA256" in {c["name"] for c in tls12}


def test_server_context_combined_pem(tmp_path: Path, dev: certificates.DevCert) -> None:
    combined = tmp_path / "combined.pem"
    combined.write_bytes(dev.cert_file.read_bytes() + dev.key_file.read_bytes())
    assert isinstance(certificates.server_context(combined, None), ssl.SSLContext)
    key_first = tmp_path / "key-first.pem"
    key_first.write_bytes(dev.key_file.read_bytes() + dev.cert_file.read_bytes())
    assert isinstance(certificates.server_context(key_first), ssl.SSLContext)


def test_missing_file(tmp_path: Path, dev: certificates.DevCert) -> None:
    with pytest.raises(CertError) as exc:
        certificates.server_context(tmp_path / "nope.pem", dev.key_file)
    assert one_line(exc) == f"certificate file {tmp_path / 'nope.pem'} does not exist"
    with pytest.raises(CertError) as exc:
        certificates.server_context(dev.cert_file, tmp_path / "nokey.pem")
    assert one_line(exc) == f"key file {tmp_path / 'nokey.pem'} does not exist"


def test_directory_instead_of_file(tmp_path: Path, dev: certificates.DevCert) -> None:
    with pytest.raises(CertError) as exc:
        certificates.server_context(tmp_path, dev.key_file)
    assert "is a directory" in one_line(exc)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path, dev: certificates.DevCert) -> None:
    dev.cert_file.chmod(0)
    with pytest.raises(CertError) as exc:
        certificates.server_context(dev.cert_file, dev.key_file)
    assert "permission denied" in one_line(exc)


def test_garbage_file(tmp_path: Path, dev: certificates.DevCert) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"hello, I am not a certificate\n")
    with pytest.raises(CertError) as exc:
        certificates.server_context(garbage, dev.key_file)
    assert one_line(exc) == f"certificate file {garbage} is not a PEM file (no '-----BEGIN' line)"


def test_der_file(tmp_path: Path, dev: certificates.DevCert) -> None:
    der = tmp_path / "cert.der"
    der.write_bytes(load_certs(dev.cert_file)[0].public_bytes(serialization.Encoding.DER))
    with pytest.raises(CertError) as exc:
        certificates.server_context(der, dev.key_file)
    assert "is DER, not PEM" in one_line(exc) and "openssl x509 -inform der" in one_line(exc)


def test_corrupt_pem_block(tmp_path: Path, dev: certificates.DevCert) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(CertError) as exc:
        certificates.server_context(bad, dev.key_file)
    assert "corrupt certificate" in one_line(exc)


def test_no_certificate_in_file(dev: certificates.DevCert) -> None:
    with pytest.raises(CertError) as exc:
        certificates.server_context(dev.key_file, dev.key_file)
    assert "holds no certificate (it holds: PRIVATE KEY)" in one_line(exc)


def test_no_key_anywhere(dev: certificates.DevCert) -> None:
    with pytest.raises(CertError) as exc:
        certificates.server_context(dev.cert_file, None)
    assert "holds no private key" in one_line(exc)
    with pytest.raises(CertError) as exc:
        certificates.server_context(dev.cert_file, dev.ca_file)
    assert "holds no private key (it holds: CERTIFICATE)" in one_line(exc)


def test_mismatched_key(tmp_path: Path, dev: certificates.DevCert) -> None:
    other = tmp_path / "other-key.pem"
    other.write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(CertError) as exc:
        certificates.server_context(dev.cert_file, other)
    assert one_line(exc).startswith(f"private key {other} does not match certificate {dev.cert_file}")


def test_chain_out_of_order(tmp_path: Path, dev: certificates.DevCert) -> None:
    leaf, ca = load_certs(dev.cert_file)
    swapped = tmp_path / "swapped.pem"
    swapped.write_bytes(ca.public_bytes(PEM) + leaf.public_bytes(PEM))
    with pytest.raises(CertError) as exc:
        certificates.server_context(swapped, dev.key_file)
    assert "out of order" in one_line(exc)


def test_encrypted_key(tmp_path: Path, dev: certificates.DevCert) -> None:
    encrypted = tmp_path / "enc-key.pem"
    encrypted.write_bytes(key_pem(load_key(dev.key_file), b"s3cret"))
    with pytest.raises(CertError) as exc:
        certificates.server_context(dev.cert_file, encrypted)
    assert "is encrypted and no password was given" in one_line(exc)
    with pytest.raises(CertError) as exc:
        certificates.server_context(dev.cert_file, encrypted, password=b"wrong")
    assert "wrong password" in one_line(exc)
    assert isinstance(certificates.server_context(dev.cert_file, encrypted, password=b"s3cret"), ssl.SSLContext)


def test_expired_certificate_loads_with_warning(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = make_cert(key, not_before=now() - dt.timedelta(days=100), not_after=now() - dt.timedelta(days=1))
    path = tmp_path / "expired.pem"
    path.write_bytes(cert.public_bytes(PEM) + key_pem(key))
    assert isinstance(certificates.server_context(path), ssl.SSLContext)
    info = certificates.describe_certificate(path)
    assert info.self_signed
    assert len(info.warnings) == 1 and "expired on" in info.warnings[0]


def test_describe_certificate(dev: certificates.DevCert) -> None:
    info = certificates.describe_certificate(dev.cert_file)
    assert info.sans == ("DNS:localhost", "IP:127.0.0.1", "IP:::1")
    assert "CN=localhost" in info.subject
    assert "pushserve development CA" in info.issuer
    assert not info.self_signed and info.warnings == ()
    assert info.not_after == load_certs(dev.cert_file)[0].not_valid_after_utc
    assert "DNS:localhost" in info.line() and "valid until" in info.line()
    soon = certificates.describe_certificate(dev.cert_file, now=info.not_after - dt.timedelta(days=5))
    assert any("expires on" in w for w in soon.warnings)
    early = certificates.describe_certificate(dev.cert_file, now=info.not_before - dt.timedelta(days=1))
    assert any("not valid before" in w for w in early.warnings)


def test_describe_warns_without_sans(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "nosan.pem"
    path.write_bytes(make_cert(key, not_before=now(), not_after=now() + dt.timedelta(days=30),
                               sans=False).public_bytes(PEM))
    assert any("subjectAltName" in w for w in certificates.describe_certificate(path).warnings)


# ---------------------------------------------------------------------------------------------
# real handshakes


def handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext,
              server_hostname: str = "localhost") -> tuple[ssl.SSLSocket, ssl.SSLSocket]:
    """TLS over a socketpair: the server side handshakes in a thread, the client here."""
    a, b = socket.socketpair()
    for s in (a, b):
        s.settimeout(30)  # a hang guard only; the handshake needs no waiting
    result: dict[str, object] = {}

    def serve() -> None:
        try:
            result["sock"] = server_ctx.wrap_socket(a, server_side=True)
        except Exception as exc:  # reported to the main thread below
            result["error"] = exc
            a.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        client = client_ctx.wrap_socket(b, server_hostname=server_hostname)
    finally:
        t.join()
    if "error" in result:
        raise AssertionError(f"server handshake failed: {result['error']}")
    server = result["sock"]
    assert isinstance(server, ssl.SSLSocket)
    return server, client


def client_context(ca_file: Path, alpn: list[str]) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    ctx.set_alpn_protocols(alpn)
    return ctx


@pytest.mark.parametrize(("offer", "expected"), [
    (["h2", "http/1.1"], "h2"),
    (["http/1.1", "h2"], "h2"),  # the server's preference wins
    (["http/1.1"], "http/1.1"),
])
def test_handshake_negotiates_alpn(dev: certificates.DevCert, offer: list[str], expected: str) -> None:
    server, client = handshake(certificates.server_context(dev.cert_file, dev.key_file),
                               client_context(dev.ca_file, offer))
    with server, client:
        assert client.selected_alpn_protocol() == expected
        assert server.selected_alpn_protocol() == expected
        client.sendall(b"ping")
        assert server.recv(4) == b"ping"


def test_handshake_tls12_uses_ecdhe_aead(dev: certificates.DevCert) -> None:
    client_ctx = client_context(dev.ca_file, ["h2"])
    client_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    server, client = handshake(certificates.server_context(dev.cert_file, dev.key_file), client_ctx)
    with server, client:
        cipher = client.cipher()
        assert cipher is not None
        name, version, _ = cipher
        assert version == "TLSv1.2"
        assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name)
        assert client.selected_alpn_protocol() == "h2"


def test_handshake_by_ip_address(dev: certificates.DevCert) -> None:
    server, client = handshake(certificates.server_context(dev.cert_file, dev.key_file),
                               client_context(dev.ca_file, ["h2"]), server_hostname="127.0.0.1")
    with server, client:
        assert client.selected_alpn_protocol() == "h2"


def test_handshake_refused_without_the_ca(tmp_path: Path, dev: certificates.DevCert) -> None:
    stranger = certificates.ensure_dev_ca(tmp_path / "other-ca")[0]
    a, b = socket.socketpair()
    server_ctx = certificates.server_context(dev.cert_file, dev.key_file)

    def serve() -> None:
        try:
            server_ctx.wrap_socket(a, server_side=True).close()
        except (ssl.SSLError, OSError):
            pass
        finally:
            a.close()

    t = threading.Thread(target=serve)
    t.start()
    with pytest.raises(ssl.SSLCertVerificationError), b:
        client_context(stranger, ["h2"]).wrap_socket(b, server_hostname="localhost")
    t.join()


# ---------------------------------------------------------------------------------------------
# SPKI, instructions, NSS trust


def test_spki_sha256_b64(dev: certificates.DevCert) -> None:
    leaf = load_certs(dev.cert_file)[0]
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    expected = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert certificates.spki_sha256_b64(dev.cert_file) == expected
    assert len(base64.b64decode(expected)) == 32
    assert certificates.spki_sha256_b64(dev.ca_file) != expected  # the CA has its own key


def test_trust_instructions(dev: certificates.DevCert) -> None:
    text = certificates.trust_instructions(dev.ca_file)
    assert "pushserve cert --trust" in text
    assert f"--ignore-certificate-errors-spki-list={certificates.spki_sha256_b64(dev.ca_file)}" in text
    assert str(dev.ca_file) in text and "Firefox" in text
    assert 3 <= len(text.splitlines()) <= 8


needs_certutil = pytest.mark.skipif(shutil.which("certutil") is None, reason="certutil not installed")


@needs_certutil
def test_trust_ca_into_fresh_nssdb(tmp_path: Path, dev: certificates.DevCert) -> None:
    db = tmp_path / "nssdb"
    message = certificates.trust_ca(dev.ca_file, db)
    assert message.startswith("added ")
    listing = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True, text=True,
                             check=True).stdout
    lines = [line for line in listing.splitlines() if "pushserve development CA" in line]
    assert len(lines) == 1 and lines[0].split()[-1] == "C,,"
    # idempotent: nothing added the second time
    assert "already trusted" in certificates.trust_ca(dev.ca_file, db)
    listing2 = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True, text=True,
                              check=True).stdout
    assert listing2 == listing
    # the stored certificate is the CA itself
    nick = lines[0].rsplit(None, 1)[0].strip()
    stored = subprocess.run(["certutil", "-L", "-d", f"sql:{db}", "-n", nick, "-a"], capture_output=True,
                            check=True).stdout
    assert x509.load_pem_x509_certificate(stored) == load_certs(dev.ca_file)[0]


@needs_certutil
def test_trust_ca_existing_db_and_second_ca(tmp_path: Path, dev: certificates.DevCert) -> None:
    db = tmp_path / "nssdb"
    db.mkdir()
    subprocess.run(["certutil", "-N", "--empty-password", "-d", f"sql:{db}"], check=True)
    certificates.trust_ca(dev.ca_file, db)
    other = certificates.ensure_dev_ca(tmp_path / "other-ca")[0]
    assert certificates.trust_ca(other, db).startswith("added ")  # a remade CA gets its own entry
    listing = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True, text=True,
                             check=True).stdout
    assert sum("pushserve development CA" in line for line in listing.splitlines()) == 2


@needs_certutil
def test_untrust_takes_out_this_users_development_cas_and_only_them(tmp_path: Path, dev: certificates.DevCert) -> None:
    db = tmp_path / "nssdb"
    assert "nothing to untrust" in certificates.untrust_ca(dev.ca_file, db)  # no database at all
    certificates.trust_ca(dev.ca_file, db)
    remade = certificates.ensure_dev_ca(tmp_path / "remade-ca")[0]  # same user: same name, another key
    certificates.trust_ca(remade, db)
    other = tmp_path / "other.pem"  # someone else's CA in the same database stays
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Corporate CA")])
    now = dt.datetime.now(dt.UTC)
    corporate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                 .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
                 .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                 .sign(key, hashes.SHA256()))
    other.write_bytes(corporate.public_bytes(serialization.Encoding.PEM))
    subprocess.run(["certutil", "-A", "-d", f"sql:{db}", "-t", "C,,", "-n", "Corporate CA", "-a", "-i", str(other)],
                   check=True)
    message = certificates.untrust_ca(dev.ca_file, db)
    assert message.startswith("removed ") and message.count("pushserve development CA") == 2
    listing = subprocess.run(["certutil", "-L", "-d", f"sql:{db}"], capture_output=True, text=True,
                             check=True).stdout
    assert "pushserve development CA" not in listing and "Corporate CA" in listing
    assert "nothing to untrust" in certificates.untrust_ca(dev.ca_file, db)
    assert dev.ca_file.is_file()  # the files stay


def test_trust_ca_without_certutil(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dev: certificates.DevCert) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(CertError) as exc:
        certificates.trust_ca(dev.ca_file, tmp_path / "nssdb")
    assert "libnss3-tools" in one_line(exc)
    assert not (tmp_path / "nssdb").exists()


def test_trust_ca_rejects_a_leaf(tmp_path: Path, dev: certificates.DevCert) -> None:
    with pytest.raises(CertError) as exc:
        certificates.trust_ca(dev.cert_file, tmp_path / "nssdb")
    assert "is not a CA certificate" in one_line(exc)


# ---------------------------------------------------------------------------------------------
# Where the certificate goes, and the names it covers


def test_default_cert_dir_is_the_ca_root(tmp_path: Path) -> None:
    result = certificates.ensure_dev_cert(caroot=tmp_path / "ca")
    assert result.cert_file == tmp_path / "ca" / "localhost.pem"
    assert result.key_file == tmp_path / "ca" / "localhost-key.pem"
    assert result.sans == ("DNS:localhost", "IP:127.0.0.1", "IP:::1")


@pytest.mark.parametrize(("given", "san"), [
    ("Phone.Local.", "DNS:phone.local"), ("*.dev.test", "DNS:*.dev.test"), ("192.168.1.20", "IP:192.168.1.20"),
    ("[fd00::5]", "IP:fd00::5"), ("xn--bcher-kva.test", "DNS:xn--bcher-kva.test"),
])
def test_dev_name_accepts(given: str, san: str) -> None:
    assert certificates.dev_name(given) == san


@pytest.mark.parametrize(("given", "why"), [
    ("https://a.test/", "not a URL"), ("a.test:8443", "without a port"), ("-a.test", "letters, digits"),
    ("a_b.test", "letters, digits"), ("*.test", "letters, digits"), ("", "letters, digits"), ("a" * 64, "letters"),
    # Not IP addresses, and browsers would read them as such: never DNS names.
    ("999.1.1.1", "four numbers 0 to 255"), ("10.1", "last part is not a number"), ("0x7f.1", "not a number"),
    ("1.2.3.4.5", "not a number"),
])
def test_dev_name_refuses(given: str, why: str) -> None:
    with pytest.raises(CertError) as exc:
        certificates.dev_name(given)
    assert why in one_line(exc)


def test_names_are_added_once_and_kept(tmp_path: Path) -> None:
    first = certificates.ensure_dev_cert(tmp_path / "certs", tmp_path / "ca", names=("phone.test", "10.0.0.7"))
    assert first.created and {"DNS:phone.test", "IP:10.0.0.7"} <= set(first.sans)
    assert certificates.describe_certificate(first.cert_file).sans == first.sans
    again = certificates.ensure_dev_cert(tmp_path / "certs", tmp_path / "ca", names=("10.0.0.7",))
    assert not again.created
    more = certificates.ensure_dev_cert(tmp_path / "certs", tmp_path / "ca", names=("laptop.test",))
    assert more.created
    assert set(certificates.describe_certificate(more.cert_file).sans) == {
        "DNS:localhost", "IP:127.0.0.1", "IP:::1", "DNS:phone.test", "IP:10.0.0.7", "DNS:laptop.test"}


def test_a_name_removed_is_gone_and_the_others_stay(tmp_path: Path) -> None:
    where = (tmp_path / "certs", tmp_path / "ca")
    certificates.ensure_dev_cert(*where, names=("phone.test", "10.0.0.7"))
    gone = certificates.ensure_dev_cert(*where, remove=("Phone.Test",))
    assert gone.created and gone.removed == ("DNS:phone.test",)
    assert set(certificates.describe_certificate(gone.cert_file).sans) == {
        "DNS:localhost", "IP:127.0.0.1", "IP:::1", "IP:10.0.0.7"}
    again = certificates.ensure_dev_cert(*where, remove=("phone.test",))  # not there: nothing made
    assert not again.created and again.removed == ()
    with pytest.raises(CertError) as exc:
        certificates.ensure_dev_cert(*where, remove=("localhost",))
    assert "always in the development certificate" in one_line(exc)


def test_names_of_a_leaf_from_another_ca_are_not_carried_over(tmp_path: Path) -> None:
    certificates.ensure_dev_cert(tmp_path / "certs", tmp_path / "ca1", names=("old.test",))
    fresh = certificates.ensure_dev_cert(tmp_path / "certs", tmp_path / "ca2")
    assert fresh.created and "DNS:old.test" not in fresh.sans


def test_phone_instructions_name_the_ca_file(dev: certificates.DevCert) -> None:
    line = tls.phone_instructions(dev.ca_file)
    assert str(dev.ca_file) in line and "\n" not in line and "iOS" in line and "Android" in line


def test_a_snapshot_is_checked_as_taken_and_named_by_the_users_paths(tmp_path: Path) -> None:
    """SIGHUP checks the memory copy it will serve (files changing during the check change
    nothing), and a problem is told with the user's paths, not the memory files'."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not a certificate\n")
    key.write_text("nor a key\n")
    snap = tls.Snapshot.take(cert, key)
    cert.unlink()  # gone from disk: the snapshot still has what was read
    try:
        with pytest.raises(tls.CertError) as e:
            certificates.check_pair(*snap.paths())
        message = snap.named(str(e.value))
        assert str(cert) in message and "/proc/self/fd" not in message
    finally:
        snap.close()
