"""The listening socket of Lanser's network servers (``lanser serve``, ``lanser mcp --http``).

Bound here, before the server starts, so port 0 gives the real port to print (and to a
``--port-file``) and a host or port that cannot be used is one clear error: E/BAD_INPUT,
because it is the ``--host``/``--port`` given that cannot be listened on.
"""

from __future__ import annotations

import socket

from .errors import BadInput


def listen(host: str, port: int, *, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one, chosen by the kernel),
    inheritable so a server started from it may hand it to a child."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BadInput(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


__all__ = ["listen"]
