"""Steering a reuse-port group: which of its sockets the kernel hands the next connection.

Linux spreads new connections (or datagrams) over the sockets of a ``SO_REUSEPORT`` group by a
hash.  A classic BPF program attached to the group (``SO_ATTACH_REUSEPORT_CBPF``, Linux 4.5)
returns the *index* of the socket to use instead; an index the group does not have falls back to
the hash.  The supervisor uses it to keep new connections away from a worker that cannot take
them (its event loop is blocked, it is not ready yet, it is stopping) within a beat or two of
the heartbeat, while the worker and its socket stay as they are.

The index is a position in the kernel's array of the group's sockets.  A socket joins at the
end when it starts listening (TCP) or is bound (UDP), and one that leaves — its last descriptor
closed — is replaced by the group's last socket (``reuseport_detach_sock``: swap and shrink).
``Group`` keeps that array's order, so its owner must tell it both moments, and must be the one
closing a socket last (a socket another process still holds open leaves when that one closes it).

The program: ``A = random() % n`` and, when the wanted sockets are not simply the first n, a
chain of ``if A == i: return index[i]``.  A random pick spreads connections as well as the
hash does; a UDP group whose datagrams of one flow must reach one socket would need a hash of
the flow instead of ``SKF_AD_RANDOM``.
"""

from __future__ import annotations

import ctypes
import logging
import socket
import struct
import sys
from collections.abc import Iterable

log = logging.getLogger("pushserve")

__all__ = ["Group", "program"]

SO_ATTACH_REUSEPORT_CBPF = 51  # include/uapi/asm-generic/socket.h

# Classic BPF opcodes (include/uapi/linux/filter.h and bpf_common.h).
_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
_ALU_MOD_K = 0x04 | 0x90 | 0x00  # BPF_ALU | BPF_MOD | BPF_K
_JEQ_K = 0x05 | 0x10 | 0x00  # BPF_JMP | BPF_JEQ | BPF_K
_RET_K = 0x06 | 0x00  # BPF_RET | BPF_K
_RET_A = 0x06 | 0x10  # BPF_RET | BPF_A
_AD_RANDOM = (-0x1000 + 56) & 0xFFFFFFFF  # SKF_AD_OFF + SKF_AD_RANDOM: a random u32 into A

_INSN = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k
MAX_PROGRAM = 4096  # BPF_MAXINSNS


class _FProg(ctypes.Structure):  # struct sock_fprog
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def program(indices: list[int]) -> bytes:
    """A program returning one of ``indices`` (positions in the group), picked at random."""
    n = len(indices)
    if n == 0:
        raise ValueError("a steering program needs at least one socket")
    insns = [(_LD_W_ABS, 0, 0, _AD_RANDOM), (_ALU_MOD_K, 0, 0, n)]
    if indices == list(range(n)):
        insns.append((_RET_A, 0, 0, 0))
    else:
        for i, index in enumerate(indices[:-1]):
            insns += [(_JEQ_K, 0, 1, i), (_RET_K, 0, 0, index)]  # A == i: the next; else skip it
        insns.append((_RET_K, 0, 0, indices[-1]))
    if len(insns) > MAX_PROGRAM:
        raise ValueError(f"a steering program for {n} sockets is too long")
    return b"".join(_INSN.pack(*insn) for insn in insns)


def attach(sock: socket.socket, code: bytes) -> None:
    """Attach ``code`` to the group ``sock`` belongs to, replacing the program it had."""
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = _FProg(len(code) // _INSN.size, ctypes.addressof(buf))
    # The kernel copies the instructions from ``buf`` during the call; ``buf`` lives until then.
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, bytes(fprog))


class Group:
    """The sockets of one reuse-port group, in the kernel's order, and where new connections go."""

    def __init__(self) -> None:
        self.members: list[socket.socket] = []
        self.available = sys.platform.startswith("linux")
        self._steered: tuple[int, ...] | None = None  # indices the attached program returns

    def joined(self, sock: socket.socket) -> None:
        """``sock`` has just started listening (or been bound, for UDP): it is last in the group."""
        self.members.append(sock)
        self._steered = None

    def left(self, sock: socket.socket) -> None:
        """``sock`` has just been closed for the last time: the group's last socket takes its place."""
        i = self.members.index(sock)
        last = self.members.pop()
        if i < len(self.members):
            self.members[i] = last
        self._steered = None

    def steer(self, wanted: Iterable[socket.socket]) -> None:
        """New connections go to the ``wanted`` sockets only (to all, when none is wanted)."""
        if not self.available or not self.members:
            return
        chosen = set(wanted)
        indices = tuple(i for i, s in enumerate(self.members) if s in chosen) or tuple(range(len(self.members)))
        if indices == self._steered:
            return
        try:
            attach(self.members[0], program(list(indices)))
        except (OSError, ValueError) as e:
            self.available = False
            log.warning("cannot steer new connections between the workers (%s): a blocked worker "
                        "keeps getting its share until it is replaced", e)
            return
        self._steered = indices
