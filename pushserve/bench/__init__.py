"""The page-load instrument that ships with pushserve: ``pushserve bench SITE``.

A latency proxy (``proxy``), a browser-like loader with a cold or warm cache (``loader``,
``discovery``), headless Chromium over WebDriver (``browser``), the runner (``pageload``) and the
HTML report (``report``).  Loopback only; every process it starts is stopped on the way out.
The repo's ``bench/`` folder adds comparisons with other servers on top of this package."""
