"""How a big generated site starts (issue 16): a 500-page site in Sphinx's layout (``_static/``,
``?v=`` queries, relative links, code samples full of ``{{ }}`` and ``{% %}``), served by
``python -m pushserve SITE`` with no flag.

Reports: time from the process start to the first 200, startup log lines (before the first 200,
and once the background manifest build has logged its summary), the worker's RSS after every page
was requested once, and the push manifest's own memory (tracemalloc, built in this process).

    python -m benchmarks.startup_site [--pages 500] [--keep DIR] [--baseline /work/main]

``--baseline CHECKOUT`` runs the same measure on another checkout of pushserve (with
``--no-templates``, which older versions need for such a site) for comparison.  The server is
pinned to CPU 0, the client to CPU 1 (taskset, when there are two CPUs).  Loopback only; every
wait is bounded."""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import re
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import httpx

from pushserve.bench.procs import CLIENT_CPU, SERVER_CPU, can_pin, pinned

REPO = Path(__file__).resolve().parents[1]
_READY = re.compile(r" at https://([^:/]+):(\d+)/ ")
_SUMMARY = re.compile(r"push manifest: \d+ pages?, ")
_CODE = ('<div class="highlight"><pre><span></span>{% extends "layout.html" %}\n'
         '{% block body %}{{ page.title }} {# note #}{% endblock %}\n</pre></div>\n')


def _v(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def generate(root: Path, pages: int) -> None:
    """A Sphinx-like site: sections of pages, shared _static assets with ?v= hashes."""
    static = root / "_static"
    (static / "fonts").mkdir(parents=True)
    files = {
        "basic.css": "div.body{min-width:360px}\n" * 200,
        "pygments.css": ".highlight .k{font-weight:bold}\n" * 100,
        "theme.css": '@import url("basic.css");\n@font-face{font-family:Lato;src:url("fonts/lato.woff2") '
                     'format("woff2"),url("fonts/lato.woff") format("woff")}\nbody{font-family:Lato}\n' * 3,
        "documentation_options.js": "const DOCUMENTATION_OPTIONS={VERSION:'1.0'};\n",
        "doctools.js": "const Documentation={init(){}};\n" * 150,
        "sphinx_highlight.js": "const SPHINX_HIGHLIGHT_ENABLED=true;\n" * 60,
        "searchtools.js": "const Search={};\n" * 300,
    }
    for name, text in files.items():
        (static / name).write_text(text)
    (static / "fonts" / "lato.woff2").write_bytes(b"wOF2" + b"\0" * 40_000)
    (static / "fonts" / "lato.woff").write_bytes(b"wOFF" + b"\0" * 60_000)
    (root / ".buildinfo").write_text("config: 0\n")
    for i in range(pages):
        section = f"section{i // 50}"
        rel = "index.html" if i == 0 else f"{section}/page{i}.html"
        up = "../" if "/" in rel else ""
        links = "".join(
            f'    <link rel="stylesheet" type="text/css" href="{up}_static/{n}?v={_v(files[n])}" />\n'
            for n in ("pygments.css", "theme.css"))
        scripts = "".join(f'    <script src="{up}_static/{n}?v={_v(files[n])}"></script>\n'
                          for n in ("documentation_options.js", "doctools.js", "sphinx_highlight.js"))
        if i % 10 == 0:  # a theme that links a file the build did not copy
            scripts += f'    <script src="{up}_static/missing.js"></script>\n'
        body = "".join(f"<p>Paragraph {j} of page {i}: " + "lorem ipsum " * 30 + "</p>\n" for j in range(20))
        html = (f'<!DOCTYPE html>\n<html lang="en" data-content_root="{up or "./"}">\n  <head>\n'
                f'    <meta charset="utf-8" />\n    <title>Page {i}</title>\n{links}{scripts}  </head>\n'
                f'  <body><div class="body" role="main"><h1>Page {i}</h1>\n{body}{_CODE}'
                f'<a href="{up}index.html">home</a></div></body>\n</html>\n')
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html)


def page_urls(root: Path) -> list[str]:
    return sorted("/" + p.relative_to(root).as_posix() for p in root.rglob("*.html"))


class Server:
    def __init__(self, site: Path, pythonpath: Path, extra: list[str], certs: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(pythonpath), "PUSHSERVE_CAROOT": str(certs / "ca"),
               "PYTHONUNBUFFERED": "1"}
        cmd = pinned([sys.executable, "-m", "pushserve", str(site), "--port", "0", "--cert-dir",
                      str(certs / "certs"), "--no-access-log", *extra], SERVER_CPU)
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                     cwd=str(pythonpath), start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, rx: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for _, line in self.lines:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self._cond.wait(left)

    def client(self, certs: Path, wait: float = 120) -> httpx.Client:
        """An HTTP/2 client of the server, once it says where it listens (httpx takes no pushes:
        hints are what it is sent)."""
        m = self.wait_for(_READY, wait)
        if m is None:
            raise SystemExit("server did not start:\n" + "\n".join(line for _, line in self.lines[-20:]))
        ctx = ssl.create_default_context(cafile=str(certs / "ca" / "rootCA.pem"))
        return httpx.Client(http2=True, verify=ctx, timeout=60, base_url=f"https://{m.group(1)}:{m.group(2)}")

    def worker_pids(self) -> list[int]:
        pid = self.proc.pid
        try:  # taskset execs the server, so the Popen pid is the supervisor's
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        return [int(c) for c in children]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(5)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def get(client: httpx.Client, url: str) -> int:
    return client.get(url).status_code


def measure(site: Path, pythonpath: Path, extra: list[str], certs: Path) -> dict[str, float]:
    if can_pin():
        os.sched_setaffinity(0, {CLIENT_CPU})
    server = Server(site, pythonpath, extra, certs)
    try:
        conn = server.client(certs)  # one connection for all pages
        status = get(conn, "/")
        first_200 = time.monotonic() - server.started
        with server._cond:
            lines_before = len(server.lines)
        assert status == 200, status
        urls = page_urls(site)
        t0 = time.monotonic()
        bad = sum(get(conn, url) != 200 for url in urls)
        all_pages = time.monotonic() - t0
        summary = server.wait_for(_SUMMARY, 60)
        workers = server.worker_pids()
        result = {"first_200_s": first_200, "startup_lines": lines_before,
                  "lines_after_summary": len(server.lines) if summary else -1,
                  "pages": len(urls), "pages_not_200": bad, "all_pages_s": all_pages,
                  "worker_rss_mib": sum(rss_kib(p) for p in workers) / 1024}
        conn.close()
        return result
    finally:
        server.stop()


def manifest_memory(site: Path) -> tuple[float, float]:
    """MiB the push manifest of the whole site holds once built, and the seconds it took."""
    from pushserve.site.manifest_store import PushManifest
    from pushserve.site.paths import PrivateFiles

    t0 = time.perf_counter()  # timed without tracemalloc, which slows allocation down a lot
    timed, _ = PushManifest.build(site, None, private=PrivateFiles(["pushserve.toml"]), lazy=True)
    for _ in timed.build_steps():
        pass
    took = time.perf_counter() - t0
    del timed
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    manifest, _ = PushManifest.build(site, None, private=PrivateFiles(["pushserve.toml"]), lazy=True)
    for _ in manifest.build_steps():
        pass
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert manifest.pages()
    return held / 2**20, took


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.startup_site", description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=500)
    p.add_argument("--keep", type=Path, help="generate the site into DIR and keep it")
    p.add_argument("--baseline", type=Path, help="another pushserve checkout to measure the same way")
    ns = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        site = ns.keep or Path(tmp) / "site"
        certs = Path(tmp) / "pki"
        subprocess.run([sys.executable, "-m", "pushserve", "cert", "--cert-dir", str(certs / "certs")],
                       env={**os.environ, "PUSHSERVE_CAROOT": str(certs / "ca")}, check=True,
                       capture_output=True, timeout=60)
        generate(site, ns.pages)
        held, took = manifest_memory(site)
        print(f"site: {ns.pages} pages, {sum(1 for _ in site.rglob('*') if _.is_file())} files; "
              f"manifest built in-process: {took:.2f} s, holds {held:.2f} MiB (tracemalloc)")
        runs = [("this checkout", REPO, [])]
        if ns.baseline is not None:
            runs.append((f"baseline {ns.baseline}", ns.baseline, ["--no-templates"]))
        for name, path, extra in runs:
            r = measure(site, path, extra, certs)
            print(f"{name}: first 200 after {r['first_200_s']:.2f} s; {r['startup_lines']} log lines before it, "
                  f"{r['lines_after_summary']} once the manifest summary is logged; {r['pages']} pages "
                  f"requested in {r['all_pages_s']:.2f} s ({r['pages_not_200']} not 200); "
                  f"worker RSS {r['worker_rss_mib']:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
