"""Open file descriptors: the limit a worker runs under, raised at start where it is too low.

Every connection holds a descriptor, and so does every file a response is reading, so a
worker's ``--max-connections`` means nothing above the process's open file limit (``ulimit -n``,
often 1024, sometimes 256): past it, accepting fails and connections wait in the kernel's queue
until they time out.  Before forking, the master raises the soft limit as far as a worker may
need (never past the hard limit, which only root may raise), and says so when that is not
enough.  At the limit a worker makes room (server/worker.py: the oldest idle keep-alive
connection goes, the excess is answered 503 / GOAWAY through a descriptor kept in reserve).
"""

from __future__ import annotations

import resource

from pushserve.config import Limits

# Descriptors a worker needs besides its connections: the listener, the event loop, pipes, the
# log, and the files responses are reading at the moment.
OTHER_FILES = 64
AT_REST = 20  # of which a worker holds about this many while it serves nothing (17 measured)


def needed(limits: Limits) -> int:
    """The open file limit a worker needs to reach --max-connections."""
    return limits.max_connections + limits.max_handshakes + OTHER_FILES


def raise_open_file_limit(limits: Limits) -> list[str]:
    """Raise the soft RLIMIT_NOFILE towards what a worker needs; lines for the log (a warning
    when the limit stays too low, with the numbers)."""
    want = needed(limits)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lines = []
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        if new > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            except (OSError, ValueError):
                new = soft
            else:
                lines.append(f"open file limit raised from {soft} to {new} (ulimit -n; hard limit "
                             f"{'unlimited' if hard == resource.RLIM_INFINITY else hard})")
                soft = new
    if soft != resource.RLIM_INFINITY and soft < want:
        shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        lines.append(f"warning: --max-connections {limits.max_connections} needs an open file limit of {want} "
                     f"per worker, but it is {soft} (ulimit -n; hard limit {shown}): past about "
                     f"{max(soft - AT_REST, 0)} open connections a worker closes idle ones and answers new ones "
                     f"503 / GOAWAY (raise the limit, or lower --max-connections)")
    return lines
