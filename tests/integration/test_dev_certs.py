"""The development certificate as a user meets it: one place whatever folder pushserve starts in,
a CA pin that Chromium accepts for every server and every renewal, extra names for a phone.

Each test has its own CA root (the session's `certs` fixture passes --cert-dir, which these
tests must not), so the default location is exercised for real."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from pushserve import certificates, lan
from tests.support.browser import chromium, wait_loaded
from tests.support.serverproc import Certs, ServerProcess, run_cli, start


@pytest.fixture
def fresh(tmp_path: Path) -> Certs:
    # cert_dir is where the certificate must land by default: beside the CA.
    return Certs(caroot=tmp_path / "caroot", cert_dir=tmp_path / "caroot")


def sans_of(path: Path) -> set[str]:
    leaf = x509.load_pem_x509_certificates(path.read_bytes())[0]
    ext = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {f"DNS:{n}" for n in ext.get_values_for_type(x509.DNSName)} | {
        f"IP:{a}" for a in ext.get_values_for_type(x509.IPAddress)}


def serial_of(path: Path) -> int:
    return x509.load_pem_x509_certificates(path.read_bytes())[0].serial_number


def page_loaded(pin: str, port: int) -> bool:
    """Did a fresh headless Chromium, told to trust only ``pin``, load the site's home page?"""
    with chromium(spki=pin) as driver:
        driver.get(f"https://localhost:{port}/")
        if not driver.execute_script("return !!document.querySelector('main')"):
            return False  # the interstitial, loaded in full
        wait_loaded(driver)  # the page: read its protocol once it is recorded
        return bool(driver.execute_script("return performance.getEntriesByType('navigation')[0].nextHopProtocol")
                    == "h2")


def test_ca_pin_from_another_folder_is_accepted_by_chromium_and_survives_renewal(
        fresh: Certs, tmp_path: Path) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    printed = run_cli(fresh, "cert", "--spki", cwd=here)
    assert printed.returncode == 0, printed.stderr
    pin = printed.stdout.strip()
    assert pin == certificates.spki_sha256_b64(fresh.ca_file)  # the CA's pin, not the leaf's
    leaf = fresh.caroot / "localhost.pem"
    assert pin != certificates.spki_sha256_b64(leaf)

    srv: ServerProcess = start(fresh, cwd=there, cert_dir=False)
    try:
        assert page_loaded(pin, srv.port)
        # Chromium really checks the pin: a CA it was not told about gets the interstitial.
        stranger = certificates.ensure_dev_ca(tmp_path / "stranger")[0]
        assert not page_loaded(certificates.spki_sha256_b64(stranger), srv.port)
    finally:
        srv.stop()
    # Neither folder grew a certs/ of its own; both runs used the one certificate beside the CA.
    assert not any(here.iterdir()) and not any(there.iterdir())

    first = serial_of(leaf)
    renewed = run_cli(fresh, "cert", "renewed.test", cwd=here)  # a new name remakes the leaf
    assert renewed.returncode == 0, renewed.stderr
    assert serial_of(leaf) != first
    srv = start(fresh, cwd=there, cert_dir=False)
    try:
        assert page_loaded(pin, srv.port)
    finally:
        srv.stop()


def test_cert_names_go_into_the_certificate_and_stay(fresh: Certs, tmp_path: Path) -> None:
    made = run_cli(fresh, "cert", "phone.test", "*.dev.test", "192.168.1.20", "[fd00::5]", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    leaf = fresh.caroot / "localhost.pem"
    wanted = {"DNS:localhost", "IP:127.0.0.1", "IP:::1", "DNS:phone.test", "DNS:*.dev.test",
              "IP:192.168.1.20", "IP:fd00::5"}
    assert sans_of(leaf) == wanted
    assert "phone.test" in made.stdout
    # Asking again for a name it has keeps the certificate; a new name adds to the old ones.
    kept = run_cli(fresh, "cert", "phone.test", cwd=tmp_path)
    assert kept.stdout.startswith("kept ")
    run_cli(fresh, "cert", "other.test", cwd=tmp_path)
    assert sans_of(leaf) == wanted | {"DNS:other.test"}


@pytest.mark.parametrize("bad", ["https://phone.test/", "phone.test:8443", "under_score.test", "*.test", "a..b"])
def test_cert_refuses_what_is_not_a_name(fresh: Certs, tmp_path: Path, bad: str) -> None:
    r = run_cli(fresh, "cert", bad, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot go in a certificate" in lines[0], r.stderr
    assert not fresh.caroot.exists()  # refused before anything was made


def test_a_name_can_be_removed_and_the_ca_untrusted(fresh: Certs, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    run_cli(fresh, "cert", "phone.test", "192.168.1.20", cwd=tmp_path)
    r = run_cli(fresh, "cert", "--remove", "phone.test", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("removed DNS:phone.test\nmade "), r.stdout
    assert sans_of(fresh.caroot / "localhost.pem") == {"DNS:localhost", "IP:127.0.0.1", "IP:::1", "IP:192.168.1.20"}
    r = run_cli(fresh, "cert", "--remove", "localhost", cwd=tmp_path)
    assert r.returncode == 2 and "always in the development certificate" in r.stderr
    if shutil.which("certutil") is None:
        return
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the NSS database of this test's own
    assert run_cli(fresh, "cert", "--trust", cwd=tmp_path).stdout.splitlines()[-1].startswith("added ")
    r = run_cli(fresh, "cert", "--untrust", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("removed 'pushserve development CA "), r.stdout
    listing = subprocess.run(["certutil", "-L", "-d", f"sql:{tmp_path / 'home' / '.pki' / 'nssdb'}"],
                             capture_output=True, text=True, check=True).stdout
    assert "pushserve" not in listing


def test_a_port_that_cannot_be_bound_touches_no_certificate(fresh: Certs, tmp_path: Path) -> None:
    """Bind first: an address that is not this machine's fails before the development
    certificate is made, or remade with that address in it."""
    r = run_cli(fresh, "site_example", "--host", "10.9.9.9", "--port", "0")
    assert r.returncode == 1 and "cannot listen on 10.9.9.9" in r.stderr and "Traceback" not in r.stderr
    assert not (fresh.caroot / "localhost.pem").exists()
    run_cli(fresh, "cert", cwd=tmp_path)
    before = serial_of(fresh.caroot / "localhost.pem")
    r = run_cli(fresh, "site_example", "--host", "10.9.9.9", "--port", "0")
    assert r.returncode == 1 and "cannot listen on 10.9.9.9" in r.stderr
    assert serial_of(fresh.caroot / "localhost.pem") == before
    assert "IP:10.9.9.9" not in sans_of(fresh.caroot / "localhost.pem")


def test_serving_on_all_addresses_covers_this_machine(fresh: Certs, tmp_path: Path) -> None:
    # Bound to 0.0.0.0, but every byte goes over 127.0.0.1.
    srv = start(fresh, "--host", "0.0.0.0", cwd=tmp_path, cert_dir=False)
    try:
        network = srv.wait_for(r"on your network: (.+)$")
        srv.wait_for(r"to trust it on a phone, copy .*rootCA\.pem")
        sans = sans_of(fresh.caroot / "localhost.pem")
        hostname = socket.gethostname()
        assert f"DNS:{hostname}" in sans
        assert {f"IP:{a}" for a in lan.lan_names("0.0.0.0") if ":" not in a and a[0].isdigit()} <= sans
        urls = network.group(1).split()
        assert urls and all(u.endswith(f":{srv.port}/") for u in urls)
        for url in urls:  # every URL the banner offers is one the certificate covers
            host = url.split("//")[1].rsplit(":", 1)[0].strip("[]")
            assert certificates.dev_name(host) in sans, (url, sans)
        # A client that checks the name gets this machine's name in the certificate, over loopback.
        ctx = ssl.create_default_context(cafile=str(fresh.ca_file))
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname=hostname) as tls_sock:
            assert tls_sock.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        srv.stop()


def test_loopback_serving_prints_no_lan_lines(fresh: Certs, tmp_path: Path) -> None:
    srv = start(fresh, cwd=tmp_path, cert_dir=False)
    srv.stop()
    srv.wait_for(r"worker \d+ stopped")  # everything the banner said has been read by now
    assert "on your network" not in srv.output and "phone" not in srv.output
    assert sans_of(fresh.caroot / "localhost.pem") == {"DNS:localhost", "IP:127.0.0.1", "IP:::1"}


def test_cert_help_describes_every_argument(fresh: Certs, tmp_path: Path) -> None:
    r = run_cli(fresh, "cert", "--help", cwd=tmp_path)
    assert r.returncode == 0
    for argument in ("NAME", "--cert-dir DIR", "--trust", "--spki", "--remove NAME", "--untrust"):
        line = next(line for line in r.stdout.splitlines() if line.strip().startswith(argument))
        assert len(line.strip()) > len(argument) + 10, line  # followed by its description
    assert str(fresh.caroot) in r.stdout  # where the files are, on this machine
    assert "CA's SPKI pin" in r.stdout
    assert not fresh.caroot.exists()  # --help makes nothing
