"""Starlette ``StaticFiles`` over the folder named by ``BENCH_DOCROOT``: the Python peer that
pushserve's static path is compared with (run under Hypercorn by ``bench throughput``)."""

from __future__ import annotations

import os

from starlette.staticfiles import StaticFiles

# The folder comes from the environment because Hypercorn imports the app by name and passes
# no arguments; the bench sets it for the child process only.
app = StaticFiles(directory=os.environ.get("BENCH_DOCROOT", "bench/site"))
