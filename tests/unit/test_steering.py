"""Steering a reuse-port group with a classic BPF program (server/steering.py), against the
kernel: listeners on loopback, connections counted per listener."""

from __future__ import annotations

import collections
import socket
import struct
from collections.abc import Iterator

import pytest

from pushserve.server.steering import Group, program


@pytest.fixture
def listeners() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    port = 0
    for _ in range(3):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", port))
        port = s.getsockname()[1]
        s.listen(128)
        s.setblocking(False)
        socks.append(s)
    yield socks
    for s in socks:
        s.close()


def connections(socks: list[socket.socket], n: int = 60) -> dict[int, int]:
    """Open ``n`` connections; how many each listener got (by its place in ``socks``)."""
    port = socks[0].getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    got: collections.Counter[int] = collections.Counter()
    for i, s in enumerate(socks):
        while True:
            try:
                conn, _ = s.accept()
            except BlockingIOError:
                break
            conn.close()
            got[i] += 1
    for c in clients:
        c.close()
    return dict(got)


def test_program_shapes() -> None:
    insn = struct.Struct("=HBBI")
    code = program([0, 1, 2])  # the first n: the random number is the index
    assert [insn.unpack_from(code, i)[0] for i in range(0, len(code), insn.size)] == [0x20, 0x94, 0x16]
    code = program([2, 5])  # a chain: A == 0 → 2, else 5
    ops = [insn.unpack_from(code, i) for i in range(0, len(code), insn.size)]
    assert ops[2:] == [(0x15, 0, 1, 0), (0x06, 0, 0, 2), (0x06, 0, 0, 5)]
    with pytest.raises(ValueError):
        program([])


def test_steered_connections_reach_only_the_chosen_sockets(listeners: list[socket.socket]) -> None:
    group = Group()
    for s in listeners:
        group.joined(s)
    group.steer([listeners[1]])
    assert group.available
    assert connections(listeners) == {1: 60}
    group.steer([listeners[0], listeners[2]])
    got = connections(listeners)
    assert set(got) == {0, 2} and sum(got.values()) == 60
    group.steer([])  # none wanted: all of them rather than none
    assert sum(connections(listeners).values()) == 60


def test_the_group_order_follows_the_kernel_when_a_socket_leaves(listeners: list[socket.socket]) -> None:
    """Closing the first socket moves the last into its place: steering to the middle one still
    reaches it, which it would not if the model kept the old order."""
    group = Group()
    for s in listeners:
        group.joined(s)
    first = listeners.pop(0)
    first.close()
    group.left(first)
    assert group.members == [listeners[1], listeners[0]]
    group.steer([listeners[0]])
    assert connections(listeners) == {0: 60}
