"""The warm daemon: one background process per (workspace, server, configuration).

It keeps an :class:`~lanser.engine.Engine`'s server session warm and answers
JSON-lines requests on a per-user Unix socket.  This package's ``paths``,
``protocol`` and ``client`` modules are imported by the CLI's hot path, so
they must stay light: no asyncio, no pygls, no lsprotocol, no tree-sitter.
``service`` and ``server`` hold the heavy side and are only imported by the
daemon process itself and by the in-process SDK.
"""
