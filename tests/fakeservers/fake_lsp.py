"""A deliberately broken language server, for Lanser's fault paths only.

Usage: ``python fake_lsp.py MODE LOGFILE``.  It answers ``initialize`` like a
real server, logs "Found 1 source file" (what the session waits for) after
``initialized``/``workspace/didChangeConfiguration``, and then misbehaves:

* ``hang``:  never answers any request after ``initialize`` (``shutdown``
  included) and ignores ``exit``: only a kill ends it.
* ``crash``: exits with status 3 on the first request after ``initialize``.
* ``early``: exits with status 4 before reading anything (a server that cannot start).
* ``garbage``: answers every request after ``initialize`` with a frame whose body
  is not JSON, then keeps running.

Every event is appended to LOGFILE as one line (``pid N``, ``request METHOD``,
``notify METHOD``), so tests can find the process and know when it is busy.
Standard library only; no pygls, so the fake cannot share the client's bugs.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, BinaryIO


def log(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()


def read_message(stream: BinaryIO) -> dict[str, Any] | None:
    length = None
    while True:
        header = stream.readline()
        if not header:
            return None
        header = header.strip()
        if not header:
            break
        name, _, value = header.decode("ascii").partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    if length is None:
        return None
    return json.loads(stream.read(length).decode("utf-8"))


def write_message(stream: BinaryIO, msg: dict[str, Any]) -> None:
    body = json.dumps(msg).encode("utf-8")
    stream.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    stream.flush()


CAPABILITIES = {
    "positionEncoding": "utf-16",
    "textDocumentSync": 1,
    "definitionProvider": True,
    "referencesProvider": True,
    "hoverProvider": True,
    "documentSymbolProvider": True,
    "renameProvider": True,
}


def main() -> int:
    mode, logfile = sys.argv[1], sys.argv[2]
    log(logfile, f"pid {os.getpid()}")
    if mode == "early":
        return 4
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        msg = read_message(stdin)
        if msg is None:
            log(logfile, "eof")
            return 0
        method = msg.get("method")
        if "id" in msg and method is not None:  # a request
            log(logfile, f"request {method}")
            if method == "initialize":
                write_message(stdout, {"jsonrpc": "2.0", "id": msg["id"], "result": {
                    "capabilities": CAPABILITIES, "serverInfo": {"name": "fake", "version": "0"}}})
            elif mode == "crash":
                log(logfile, "crashing")
                return 3
            elif mode == "garbage":
                body = b"{this is not json"
                stdout.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
                stdout.flush()
            # hang: never answer
        elif method is not None:  # a notification
            log(logfile, f"notify {method}")
            if method in ("initialized", "workspace/didChangeConfiguration"):
                write_message(stdout, {"jsonrpc": "2.0", "method": "window/logMessage",
                                       "params": {"type": 3, "message": "Found 1 source file"}})
            # "exit" is ignored on purpose in every mode: the client must kill us.


if __name__ == "__main__":
    raise SystemExit(main())
