"""Memory of a running server: every process of its tree (the one the harness started and all its
descendants: master and workers), each with RSS, PSS and USS from ``/proc/PID/smaps_rollup``.

- RSS counts every resident page a process maps, so forked workers that share the master's pages
  count them again: the sum over processes overstates what the server costs.
- PSS divides each shared page among the processes mapping it, so the sum over a server's
  processes is its fair share.  Pages shared with processes *outside* the server (a shared
  library mapped by other programs on the machine) are divided with those too, so PSS of a
  server depends a little on what else runs.
- USS (Private_Clean + Private_Dirty) is what the process alone holds: freed if it exits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pushserve.bench.procs import BenchError

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    ppid: int
    comm: str
    cmdline: str
    rss_kib: int
    pss_kib: int
    uss_kib: int


def parse_smaps_rollup(text: str) -> tuple[int, int, int]:
    """(RSS, PSS, USS) in KiB from the text of ``/proc/PID/smaps_rollup``."""
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        parts = rest.split()
        if sep and len(parts) == 2 and parts[1] == "kB":
            fields[name] = int(parts[0])
    try:
        return fields["Rss"], fields["Pss"], fields["Private_Clean"] + fields["Private_Dirty"]
    except KeyError as e:
        raise BenchError(f"smaps_rollup without {e.args[0]}") from None


def parse_stat(text: str) -> tuple[str, int]:
    """(comm, ppid) from ``/proc/PID/stat``; comm is in parentheses and may hold spaces or ')'."""
    head, _, tail = text.rpartition(")")
    return head.partition("(")[2], int(tail.split()[1])


def _parents() -> dict[int, tuple[str, int]]:
    found: dict[int, tuple[str, int]] = {}
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = parse_stat((PROC / entry.name / "stat").read_text())
            except (OSError, ValueError):
                continue  # exited while we looked
    return found


def process_tree(pid: int) -> list[tuple[int, int, str]]:
    """(pid, ppid, comm) of ``pid`` and all its descendants, parents before children."""
    procs = _parents()
    if pid not in procs:
        raise BenchError(f"process {pid} is gone")
    children: dict[int, list[int]] = {}
    for child, (_comm, parent) in procs.items():
        children.setdefault(parent, []).append(child)
    order, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        order.append((p, procs[p][1], procs[p][0]))
        todo.extend(sorted(children.get(p, ())))
    return order


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants now (a server's master and workers):
    across one run, CPU per request moves much less with other load on the machine than the rate."""
    total = 0
    for p, _, _ in process_tree(pid):
        try:
            fields = (PROC / str(p) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def measure(pid: int) -> list[ProcessMemory]:
    """Memory of every process of the tree rooted at ``pid``."""
    out = []
    for p, ppid, comm in process_tree(pid):
        try:
            rss, pss, uss = parse_smaps_rollup((PROC / str(p) / "smaps_rollup").read_text())
            argv = (PROC / str(p) / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError as e:
            raise BenchError(f"cannot read memory of {comm} ({p}): {e.strerror}") from None
        # argv[0] without its folder; a server that retitles itself (nginx: "nginx: worker
        # process") puts the whole title in argv[0], so only its first word is a path.
        program, space, title = argv[0].decode(errors="replace").partition(" ")
        cmdline = " ".join([os.path.basename(program) + space + title]
                           + [a.decode(errors="replace") for a in argv[1:]])
        out.append(ProcessMemory(p, ppid, comm, cmdline, rss, pss, uss))
    return out
