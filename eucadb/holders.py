"""Who holds something (the leader lease, an image upload): `host:pid:nonce` ids.

A holder on this host whose process is gone provably died, so what it held can be taken at once;
holders on other hosts are judged by timeouts alone.
"""
from __future__ import annotations

import os
import socket
import uuid


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def holder_is_dead(holder: str) -> bool:
    """True only when the holder provably died: a process of this host whose pid no longer runs.

    Lets a `workflow launch` (or an image upload) killed with -9 be taken over at once instead of
    after a timeout; holders on other hosts are judged by the timeout alone."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
