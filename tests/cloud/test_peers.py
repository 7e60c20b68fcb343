"""Who is on the other end of a loopback connection: the kernel's answer (sock_diag, /proc/net/tcp)
and the metadata service's rule (owner uid, and a socket held by one of the instance's processes)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from eucadb.cloud.local.peers import Owner, _diag, from_table, peer_socket


@pytest.fixture
def connection():
    """A server socket and, connected to it, a client socket of this process."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            accepted, peer = server.accept()
            with accepted:
                yield peer, server.getsockname(), client


def test_the_kernel_names_the_peer_socket(connection):
    peer, local, client = connection
    expected = (os.geteuid(), os.fstat(client.fileno()).st_ino)
    assert _diag(peer, local) == expected
    assert from_table(peer, local) == expected, "the fallback agrees"
    assert peer_socket(("127.0.0.1", 1), local) is None


def test_only_a_member_holding_the_socket_is_the_owner(connection):
    peer, local, _ = connection
    assert Owner(os.geteuid(), lambda: [os.getpid()]).connected(peer, local)
    assert not Owner(os.geteuid() + 1, lambda: [os.getpid()]).connected(peer, local), "another uid"
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as other:
        try:
            assert not Owner(os.geteuid(), lambda: [other.pid]).connected(peer, local), "same uid, other process"
        finally:
            other.kill()
    assert not Owner(os.geteuid(), lambda: []).connected(peer, local)
