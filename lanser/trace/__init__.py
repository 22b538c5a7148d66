"""Traces: record every operation as JSON Lines (``--trace-file``) and replay them with no server.

``format`` defines the events and reads, validates and selects them; ``record`` writes
them as operations run; ``replay`` rebuilds every bundle and record from a trace.  The
reading and recording names are importable from ``lanser.trace``; replay (which imports
the engine) from ``lanser.trace.replay``.
"""

from .format import (
                     EVENTS,
                     LANSER_DIR,
                     TRACE_FORMAT,
                     Operation,
                     Run,
                     operations,
                     read_trace,
                     select,
                     touched_files,
                     trace_base,
                     workspace_digest,
                     workspace_rel,
)
from .record import Recorder, Trajectory, trajectory_args

__all__ = ["EVENTS", "LANSER_DIR", "TRACE_FORMAT", "Operation", "Recorder", "Run", "Trajectory", "operations",
           "read_trace", "select", "touched_files", "trace_base", "trajectory_args", "workspace_digest",
           "workspace_rel"]
