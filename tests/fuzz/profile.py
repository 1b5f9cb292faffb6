"""How hard the fuzz targets try: a short run by default (CI), many examples by hand.

``PUSHSERVE_FUZZ=long python -m pytest -q tests/fuzz`` runs the long profile (minutes); the default
keeps the whole folder within about 20 s.  ``PUSHSERVE_FUZZ_EXAMPLES=N`` overrides the count.  The
long profile also plays tests/integration/test_availability.py's idle-handshake flood at the
issue's size (3,000 connections instead of 404).
Failing examples are kept in .hypothesis/ and replayed first on the next run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_EXAMPLES = {"ci": 300, "long": 20_000}

_profile = os.environ.get("PUSHSERVE_FUZZ", "ci")
if _profile not in _EXAMPLES:
    raise SystemExit(f"PUSHSERVE_FUZZ={_profile!r}: expected one of {', '.join(_EXAMPLES)}")
LONG = _profile == "long"

# No deadline: a slow example on a busy 2-core machine is not a finding.  Large inputs are the
# point here, so the size health checks stay off.
FUZZ = settings(
    max_examples=int(os.environ.get("PUSHSERVE_FUZZ_EXAMPLES", _EXAMPLES[_profile])),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
