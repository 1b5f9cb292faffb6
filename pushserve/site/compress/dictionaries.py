"""Previous versions of files, kept as compression dictionaries (RFC 9842), on disk.

One folder per site (the user's cache dir by default), shared by every worker of a server and
across restarts: the version a browser holds was maybe served by another worker, or by the
server before a deploy.  A file is named by the hex SHA-256 of its content, which is also what
the browser names in ``Available-Dictionary``; writes go to a temporary name and are renamed into
place, so a reader in another worker sees a whole file or none.  The folder is bounded in file
count and bytes: the least recently written versions go first.

``save`` does the disk work and is meant for a worker thread; ``load`` reads one file (small,
and usually in a memory cache in front of it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger("pushserve")

MAX_FILES = 200
MAX_BYTES = 64 * 1024 * 1024
MAX_DICTIONARY = 4 * 1024 * 1024  # a bigger file is not offered as a dictionary
_MEMORY = 16  # dictionaries kept in memory per worker


class DictionaryStore:
    def __init__(self, folder: Path, *, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> None:
        self.folder = folder
        self.max_files = max_files
        self.max_bytes = max_bytes
        self._memory: OrderedDict[bytes, bytes] = OrderedDict()
        self._broken = False  # the folder cannot be written: said once, then dcz is off

    def save(self, data: bytes) -> bytes | None:
        """Keep ``data`` (if it is not kept already) and return its SHA-256; None when the folder
        cannot be written.  Runs in a worker thread."""
        digest = _sha256(data)
        path = self.folder / digest.hex()
        try:
            if path.exists():
                os.utime(path)  # recently used: pruned last
                return digest
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as e:
            if not self._broken:
                self._broken = True
                log.warning("compression dictionaries: cannot write %s: %s", self.folder, e.strerror or e)
            return None
        self._prune()
        return digest

    def load(self, digest: bytes) -> bytes | None:
        """The kept version whose SHA-256 is ``digest``, or None."""
        data = self._memory.get(digest)
        if data is not None:
            self._memory.move_to_end(digest)
            return data
        try:
            with open(self.folder / digest.hex(), "rb") as f:
                data = f.read(MAX_DICTIONARY + 1)
        except OSError:
            return None
        if len(data) > MAX_DICTIONARY or _sha256(data) != digest:
            return None  # a damaged or foreign file: never compress against it
        self._memory[digest] = data
        if len(self._memory) > _MEMORY:
            self._memory.popitem(last=False)
        return data

    def _prune(self) -> None:
        try:
            entries = [(e.stat().st_mtime, e.stat().st_size, e.path) for e in os.scandir(self.folder)
                       if e.is_file() and not e.name.startswith(".")]
        except OSError:
            return
        entries.sort(reverse=True)  # newest first
        total = 0
        for count, (_mtime, size, path) in enumerate(entries, 1):
            total += size
            if count > self.max_files or total > self.max_bytes:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _sha256(data: bytes) -> bytes:
    import hashlib  # here, on first use: importing it costs a worker ~0.6 MiB (OpenSSL digests)

    return hashlib.sha256(data).digest()
