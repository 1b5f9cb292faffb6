"""``python -m pushserve.bench SITE ...``: the same as ``pushserve bench SITE ...``."""

from pushserve.bench.command import main

raise SystemExit(main())
