"""Trajectory converters: SWE-agent ``.traj`` files, commit ranges and per-step diffs -> Lanser steps."""
