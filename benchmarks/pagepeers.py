"""nginx, h2o and Caddy as peers in ``python -m benchmarks pageload SITE --peers``: each serves the
site as ``pushserve export`` writes it for them (pages rendered to the very bytes pushserve sends,
one block per page with pushserve's Link headers and Cache-Control, precompressed siblings), with
the exported snippet included in a minimal config, the way a user sets them up.

- nginx 1.22: ``http2_push_preload on`` (in the snippet) pushes what the Link headers name when
  the client allows push; else the Link headers reach the client.
- h2o 2.2.5: pushes what ``rel=preload`` Link headers from the snippet's mruby handler name,
  with ``http2-casper`` on.
- Caddy 2.6 (the export tests only, not a page-load peer yet): pushes what the Link headers name
  with its ``push`` handler; it promises a resource the page already requested, and the loader's
  reset of that push fails once the pushed stream is already closed.

The same starters serve the exported folder in the export tests (tests/integration)."""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from benchmarks import servers
from pushserve.bench.certs import CertPair
from pushserve.bench.pageload import Variant
from pushserve.bench.procs import LOOPBACK, SERVER_CPU, Place, Starter, free_port, pinned, running
from pushserve.export import caddy, h2o, nginx
from pushserve.export.run import FORMATS, PUBLIC, export
from pushserve.export.site import SiteExport
from pushserve.options import make_config

PEER_MODES = ("h1", "h2-off", "h2-push")
PAGE_PEERS = ("nginx", "h2o")


def export_site(site: Path, out: Path, log: Callable[[str], None]) -> SiteExport:
    """``pushserve export SITE OUT`` with the site's own settings (pushserve.toml), every format."""
    return export(make_config(site).without_dev(), out, FORMATS, None, force=False, say=log,
                  root=str(out.resolve() / PUBLIC))


@contextmanager
def nginx_server(out: Path, cert: CertPair, work: Path, place: Place = LOOPBACK) -> Iterator[str]:
    spec = servers.ServeSpec(out / "public", cert, work)
    with servers.nginx(spec, server=f"include {out.resolve() / nginx.FILE_NAME};", place=place) as served:
        yield served.base


@contextmanager
def h2o_server(out: Path, cert: CertPair, work: Path, place: Place = LOOPBACK) -> Iterator[str]:
    port = free_port()
    conf = work / "h2o.conf"
    user = "user: root\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"{user}num-threads: 1\npid-file: {work}/h2o.pid\n"
        f"listen:\n  host: {place.host}\n  port: {port}\n  ssl:\n"
        f"    certificate-file: {cert.cert}\n    key-file: {cert.key}\n"
        f'hosts:\n  "{place.host}:{port}": !file {out.resolve() / h2o.FILE_NAME}\n')
    with running("h2o", place.wrap(pinned(["h2o", "-c", str(conf)], SERVER_CPU))) as child:
        child.wait_for_port(port, host=place.host)
        yield f"https://{place.host}:{port}"


@contextmanager
def caddy_server(out: Path, cert: CertPair, work: Path, place: Place = LOOPBACK) -> Iterator[str]:
    port = free_port()
    conf_dir = work / "caddy"
    conf_dir.mkdir(exist_ok=True)
    (conf_dir / "Caddyfile").write_text(
        "{\n    admin off\n    auto_https disable_redirects\n}\n"
        f"https://:{port} {{\n    bind {place.host}\n    tls {cert.cert} {cert.key}\n"
        f"    import {out.resolve() / caddy.FILE_NAME}\n}}\n")
    # Caddy keeps its state under $HOME/.local/share/caddy and $XDG_CONFIG_HOME: here, in work.
    env = {**os.environ, "HOME": str(conf_dir), "XDG_DATA_HOME": str(conf_dir), "XDG_CONFIG_HOME": str(conf_dir)}
    cmd = ["caddy", "run", "--config", str(conf_dir / "Caddyfile"), "--adapter", "caddyfile"]
    with running("caddy", place.wrap(pinned(cmd, SERVER_CPU)), env=env) as child:
        child.wait_for_port(port, host=place.host)
        yield f"https://{place.host}:{port}"


PeerStart = Callable[[Path, CertPair, Path, Place], AbstractContextManager[str]]
PEERS: dict[str, PeerStart] = {"nginx": nginx_server, "h2o": h2o_server, "caddy": caddy_server}


def peer_setup(site: Path, page: str, log: Callable[[str], None]
               ) -> Callable[[Path, CertPair], tuple[dict[str, Starter], list[Variant]]]:
    """What ``pushserve.bench.pageload.main(extra=...)`` takes: exports the site, then a starter
    and the variants for each installed page peer (a missing one is skipped with one line)."""

    def setup(work: Path, cert: CertPair) -> tuple[dict[str, Starter], list[Variant]]:
        out = work / "export"
        exported = export_site(site.resolve(), out, log)
        if not any(page in f.urls and f.links for f in exported.files):
            log(f"note: pushserve's manifest lists nothing for {page}; peers get no Link headers")
        starters: dict[str, Starter] = {}
        variants: list[Variant] = []
        for name in PAGE_PEERS:
            if shutil.which(name) is None:
                log(f"skipped {name}: not installed")
                continue
            starters[name] = functools.partial(PEERS[name], out, cert, work)
            variants += [Variant(name, mode, name) for mode in PEER_MODES]
        return starters, variants

    return setup
