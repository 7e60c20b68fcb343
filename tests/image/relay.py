"""One guest connection of a QEMU `guestfwd=…-cmd:` rule: stdin/stdout <-> a loopback TCP port.

QEMU runs the command once per guest connection (a `tcp:` chardev would be one connection for the
VM's whole life), so each HTTP request of the VM gets its own relay.

    python3 relay.py PORT
"""
from __future__ import annotations

import os
import selectors
import socket
import sys


def main() -> None:
    upstream = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
    upstream.settimeout(None)
    selector = selectors.DefaultSelector()
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "guest")
    selector.register(upstream, selectors.EVENT_READ, "host")
    open_ends = 2
    while open_ends:
        for key, _ in selector.select():
            if key.data == "guest":
                data = os.read(sys.stdin.fileno(), 65536)
                if data:
                    upstream.sendall(data)
                    continue
                upstream.shutdown(socket.SHUT_WR)
            else:
                data = upstream.recv(65536)
                if data:
                    os.write(sys.stdout.fileno(), data)
                    continue
                sys.stdout.close()
            selector.unregister(key.fileobj)
            open_ends -= 1


if __name__ == "__main__":
    main()
