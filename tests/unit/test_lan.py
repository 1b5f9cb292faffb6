"""pushserve.lan: which names a server bound beyond loopback is reached by (nothing is sent)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

from pushserve import lan


@pytest.mark.parametrize(("host", "beyond"), [
    ("127.0.0.1", False), ("127.0.0.2", False), ("::1", False), ("localhost", False), ("LOCALHOST.", False),
    ("0.0.0.0", True), ("::", True), ("192.168.1.5", True), ("fd00::5", True), ("mybox.lan", True),
])
def test_beyond_loopback(host: str, beyond: bool) -> None:
    assert lan.beyond_loopback(host) is beyond
    assert bool(lan.lan_names(host)) is beyond


def test_a_specific_address_or_name_is_itself() -> None:
    assert lan.lan_names("192.168.1.5") == ("192.168.1.5",)
    assert lan.lan_names("mybox.lan") == ("mybox.lan",)
    assert lan.lan_urls("fd00::5", 8443) == ["https://[fd00::5]:8443/"]


def test_all_addresses_name_this_machine() -> None:
    names = lan.lan_names("0.0.0.0")
    assert names[0] == socket.gethostname()
    for name in names:
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            continue
        assert ip.version == 4 and not ip.is_loopback and not ip.is_link_local
    urls = lan.lan_urls("0.0.0.0", 9443)
    assert len(urls) == len(names) and all(u.startswith("https://") and u.endswith(":9443/") for u in urls)


def test_banner_lines() -> None:
    assert lan.banner_lines("127.0.0.1", 8443, Path("/ca/rootCA.pem")) == []
    lines = lan.banner_lines("192.168.1.5", 8443, Path("/ca/rootCA.pem"))
    assert lines[0] == "on your network: https://192.168.1.5:8443/"
    assert "/ca/rootCA.pem" in lines[1] and len(lines) == 2
    assert lan.banner_lines("192.168.1.5", 8443, None) == ["on your network: https://192.168.1.5:8443/"]
