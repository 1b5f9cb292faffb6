"""A big documentation site (issue 23): how soon pushserve answers after its start, and how fast
it answers while its workers read every page in the background.

The site is generated in rustdoc's layout (``static.files/`` with hashed names, a stylesheet
with ``@font-face`` fonts, a ``<noscript>`` stylesheet, scripts; 500 pages a folder, code
samples with ``{{ }}``), or given with ``--site DIR`` (a real build: ``rustup doc`` puts the
Rust documentation under ``~/.rustup/toolchains/*/share/doc/rust/html``).

    python -m benchmarks.big_site [--pages 32000] [--site DIR] [--during 120] [--baseline CHECKOUT]

Reports, for pushserve (and ``--baseline``: another checkout, the same way):

- **first 200**: seconds from the process start to the first 200 of a page;
- **build**: the background build of the push manifest, as its summary line says;
- **TTFB during / after**: time to the response headers of pages (p50, p99, max, in ms), asked
  for one after another on one HTTP/2 connection while the build runs (up to ``--during``
  seconds), then as many again once it is done;

and nginx's first 200 on the same folder beside it (the same certificate, ``root`` and nothing
else).  Server on CPU 0, client on CPU 1 (taskset, when there are two CPUs).  Loopback only;
every wait is bounded."""

from __future__ import annotations

import argparse
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks import servers
from benchmarks.startup_site import REPO, Server
from pushserve.bench.certs import CertPair, make_cert
from pushserve.bench.procs import CLIENT_CPU, can_pin

_SUMMARY = re.compile(r"push manifest: [\d,]+ pages?, .*?(?:in the background: ([\d.]+) s)?\)?$")
_CSS = (
    "@font-face{font-family:'Fira Sans';font-display:swap;src:url(FiraSans-Regular-0fe48ade.woff2) format('woff2')}\n"
    "@font-face{font-family:'Source Serif 4';src:url(SourceSerif4-Regular-6b053e98.ttf.woff2) format('woff2')}\n"
    + "".join(f".item-{i}{{color:#{i:06x};margin:{i % 7}px}}\n" for i in range(400)))
PAGES_PER_FOLDER = 500


def _page(i: int, up: str, padding: int) -> str:
    static = f"{up}static.files"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>fn item_{i} - Rust</title>"
        f'<link rel="stylesheet" href="{static}/normalize-9960930a.css">'
        f'<link rel="stylesheet" href="{static}/rustdoc-b7b9f40b.css">'
        f'<script src="{static}/storage-41dd4d93.js"></script>'
        f'<script defer src="{static}/main-5013f961.js"></script>'
        f'<noscript><link rel="stylesheet" href="{static}/noscript-f7c3ffd8.css"></noscript>'
        f'<link rel="icon" href="{static}/favicon-044be391.svg"></head>'
        f'<body class="rustdoc fn"><nav class="sidebar"><a href="{up}index.html">crate</a>'
        f'<a href="item_{i + 1}.html">next</a></nav><main><h1>Function <span>item_{i}</span></h1>'
        f'<pre class="rust"><code>let s = format!("{{{{}}}}", {i});</code></pre>'
        f"<p>{'Lorem ipsum dolor sit amet. ' * (padding // 28)}</p></main></body></html>\n")


def generate(root: Path, pages: int, padding: int = 1500, *, links: bool = False) -> list[str]:
    """Write the site; returns the URL paths of its pages (the first is ``/index.html``).
    ``links``: the pages of a folder are hard links to its first (ten times quicker to make, for
    the tests: the server reads every one as a page of its own all the same)."""
    static = root / "static.files"
    static.mkdir(parents=True, exist_ok=True)
    for name, data in (("normalize-9960930a.css", b"html{line-height:1.15}\n"),
                       ("rustdoc-b7b9f40b.css", _CSS.encode()),
                       ("noscript-f7c3ffd8.css", b".sidebar{display:none}\n"),
                       ("storage-41dd4d93.js", b"var storage=1;\n" * 50),
                       ("main-5013f961.js", b"function main(){}\n" * 500),
                       ("favicon-044be391.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>\n"),
                       ("FiraSans-Regular-0fe48ade.woff2", b"wOF2" + b"\0" * 30_000),
                       ("SourceSerif4-Regular-6b053e98.ttf.woff2", b"wOF2" + b"\0" * 40_000)):
        (static / name).write_bytes(data)
    (root / "index.html").write_text(_page(0, "", padding))
    urls = ["/index.html"]
    first = ""
    for i in range(1, pages):
        folder = f"crate{i // PAGES_PER_FOLDER}"
        path = root / folder / f"item_{i}.html"
        if i % PAGES_PER_FOLDER == 0 or i == 1:
            (root / folder).mkdir(exist_ok=True)
            first = ""
        if links and first:
            os.link(first, path)
        else:
            with open(path, "w") as f:
                f.write(_page(i, "../", padding))
            first = str(path)
        urls.append(f"/{folder}/item_{i}.html")
    return urls


def site_pages(root: Path, limit: int = 50_000) -> list[str]:
    """URL paths of a given site's pages (for --site), in the order of a walk."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root).as_posix()
        found += [f"/{rel}/{f}" if rel != "." else f"/{f}" for f in sorted(filenames) if f.endswith(".html")]
        if len(found) >= limit:
            break
    return found


def cpu_seconds(pid: int, children: list[int]) -> float:
    """CPU time (user + system) the server has used: the master with the children it reaped (the
    start's check), and its live workers — what the start cost, whatever the machine's load."""
    def ticks(p: int, fields: slice) -> int:
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            return 0
        return sum(int(x) for x in stat.rsplit(")", 1)[1].split()[fields])

    hz = os.sysconf("SC_CLK_TCK")
    # after the ")": state is field 3; utime, stime, cutime, cstime are fields 14-17
    return (ticks(pid, slice(11, 15)) + sum(ticks(c, slice(11, 13)) for c in children)) / hz


def _quantiles(times: list[float]) -> dict[str, float]:
    if not times:
        return {"n": 0, "p50": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(times)

    def ms(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"n": len(ordered), "p50": ms(0.5), "p99": ms(0.99), "max": ordered[-1] * 1000}


def _ttfb(client: httpx.Client, url: str) -> float:
    start = time.perf_counter()
    with client.stream("GET", url) as response:
        took = time.perf_counter() - start
        response.read()
    if response.status_code != 200:
        raise SystemExit(f"{url}: {response.status_code}")
    return took


def measure_pushserve(site: Path, urls: list[str], pythonpath: Path, certs: Path, during: float,
                      extra: list[str]) -> dict[str, object]:
    server = Server(site, pythonpath, extra, certs)
    try:
        client = server.client(certs, 300)
        first = _ttfb(client, urls[len(urls) // 2])  # a page nobody asked for: inferred on the spot
        first_200 = time.monotonic() - server.started
        first_cpu = cpu_seconds(server.proc.pid, server.worker_pids())
        during_times: list[float] = []
        deadline = time.monotonic() + during
        i = 0
        while time.monotonic() < deadline:
            with server._cond:
                done = any(_SUMMARY.search(line) for _, line in server.lines)
            if done:
                break
            during_times.append(_ttfb(client, urls[(i * 7919) % len(urls)]))
            i += 1
        summary = server.wait_for(_SUMMARY, 3600)
        build = float(summary.group(1)) if summary is not None and summary.group(1) else float("nan")
        after_times = [_ttfb(client, urls[(j * 7919) % len(urls)]) for j in range(max(len(during_times), 500))]
        client.close()
        startup = [line for _, line in server.lines if "pushserve" in line][:6]
        return {"first_200": first_200, "first_cpu": first_cpu, "first_ttfb": first * 1000, "build": build,
                "during": _quantiles(during_times), "after": _quantiles(after_times), "log": startup}
    finally:
        server.stop()


def measure_nginx(site: Path, url: str, cert: CertPair, work: Path) -> float:
    started = time.monotonic()
    with servers.nginx(servers.ServeSpec(site, cert, work)) as served:
        ctx = ssl.create_default_context(cafile=str(cert.cert))  # the chain holds the CA
        with httpx.Client(http2=True, verify=ctx, timeout=30) as client:
            status = client.get(served.base + url).status_code
        took = time.monotonic() - started
    if status != 200:
        raise SystemExit(f"nginx: {url}: {status}")
    return took


def _row(name: str, r: dict[str, object]) -> str:
    during, after = r["during"], r["after"]
    assert isinstance(during, dict) and isinstance(after, dict)
    return (f"| {name} | {r['first_200']:.2f} | {r['build']:.1f} | {during['n']} | {during['p50']:.1f} / "
            f"{during['p99']:.1f} / {during['max']:.0f} | {after['p50']:.1f} / {after['p99']:.1f} / "
            f"{after['max']:.0f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.big_site", description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=32_000, help="pages to generate (32000)")
    p.add_argument("--site", type=Path, help="serve this folder instead of a generated one")
    p.add_argument("--keep", type=Path, help="generate the site into DIR and keep it")
    p.add_argument("--during", type=float, default=120.0, help="seconds of requests while the manifest builds")
    p.add_argument("--baseline", type=Path, help="another pushserve checkout to measure the same way")
    ns = p.parse_args(argv)
    if can_pin():
        os.sched_setaffinity(0, {CLIENT_CPU})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if ns.site is not None:
            site, urls = ns.site.resolve(), site_pages(ns.site)
        else:
            site = ns.keep or work / "site"
            started = time.monotonic()
            urls = generate(site, ns.pages)
            print(f"generated {len(urls):,} pages in {time.monotonic() - started:.1f} s", file=sys.stderr)
        certs = work / "pki"
        subprocess.run([sys.executable, "-m", "pushserve", "cert", "--cert-dir", str(certs / "certs")],
                       env={**os.environ, "PUSHSERVE_CAROOT": str(certs / "ca")}, check=True,
                       capture_output=True, timeout=60)
        print(f"load average before: {os.getloadavg()[0]:.2f}", file=sys.stderr)
        rows = [("pushserve (this checkout)", measure_pushserve(site, urls, REPO, certs, ns.during, []))]
        if ns.baseline is not None:
            rows.append((f"pushserve ({ns.baseline})",
                         measure_pushserve(site, urls, ns.baseline.resolve(), certs, ns.during, [])))
        nginx = None
        if servers.nginx_available():
            nginx = measure_nginx(site, urls[0], make_cert(work / "nginx-pki"), work)
        print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    print(f"{len(urls):,} pages ({'given: ' + str(ns.site) if ns.site else 'generated'})")
    print("| server | first 200 (s) | manifest build (s) | requests during | TTFB during p50 / p99 / max (ms) "
          "| TTFB after p50 / p99 / max (ms) |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        print(_row(name, r))
    if nginx is not None:
        print(f"| nginx | {nginx:.2f} | | | | |")
    for name, r in rows:
        log = r["log"]
        assert isinstance(log, list)
        print(f"\n{name}: CPU time up to the first 200 {r['first_cpu']:.2f} s; first page's TTFB "
              f"{r['first_ttfb']:.1f} ms; start log:", *log, sep="\n  ")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
