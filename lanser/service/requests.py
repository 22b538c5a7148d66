"""What a request to the reward service may carry, checked before anything runs.

Pure checks (plus one ``git rev-parse`` for a commit base): a request that fails one is
answered 4xx with the contract's error code and changes nothing.

* **base**: ``{"base": "/abs/dir"}`` (a directory, used as it is and never written) or
  ``{"repo": "/abs/git/repo", "base": "<commit-ish>"}`` (a commit of a local git repository,
  materialised once per (repository, commit) by :mod:`.bases`).  Paths must be absolute: the
  service's working directory is nobody's business, and on a Ray cluster the workers resolve
  them on their own node.
* **options**: those of ``lanser reward``, in the bundle's spelling: ``severity`` (a name or
  a list), ``scope``, ``diagTerm``, ``weights`` (``"alpha=..,beta=..,gamma=.."`` or an
  object), ``clip``, ``aggregate``, ``byFile``; ``inMemory`` may be given and must be true
  (the service never writes a base).  An unknown key is refused rather than ignored.
* **step**: a step object as ``lanser reward`` reads them (:func:`lanser.rewards.steps.validate_step`).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import BY_CODE, BadInput, LanserError, NotFound
from ..rewards.formula import Weights, parse_weights
from ..rewards.runner import RewardOptions
from ..rewards.steps import BadStep, Step, validate_step

OPTION_KEYS = ("severity", "scope", "diagTerm", "weights", "clip", "aggregate", "byFile", "inMemory")
_COMMITISH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@{}^~+-]{0,199}$")


@dataclass(frozen=True)
class BaseSpec:
    """A base as the workers materialise it: a commit of a repository, or a directory."""

    kind: str              # "git" | "dir"
    path: str              # the repository (git) or the directory (dir), resolved
    commit: str | None = None

    @property
    def key(self) -> str:
        return f"git:{self.path}@{self.commit}" if self.kind == "git" else f"dir:{self.path}"

    @property
    def label(self) -> str:
        """Short and stable: what /metrics and /v1/pool show."""
        name = os.path.basename(self.path.rstrip("/")) or "/"
        digest = hashlib.sha256(self.path.encode()).hexdigest()[:6]
        return f"{name}@{self.commit[:12]}" if self.kind == "git" and self.commit else f"{name}~{digest}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "commit": self.commit}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "BaseSpec":
        return cls(str(obj["kind"]), str(obj["path"]), obj.get("commit"))


def _absolute(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value or "\0" in value:
        raise BadInput(f"{field!r} must be a non-empty path string", details={"field": field})
    if not os.path.isabs(value):
        raise BadInput(f"{field!r} must be an absolute path, got {value!r}", details={"field": field})
    return os.path.realpath(value)


def parse_base(body: Mapping[str, Any]) -> BaseSpec:
    """The base of a session request (see the module docstring); E/BAD_INPUT or E/NOT_FOUND."""
    repo, base = body.get("repo"), body.get("base")
    if repo is None:
        if base is None:
            raise BadInput("a session needs 'base': a directory, or a commit of 'repo'",
                           details={"field": "base"})
        path = _absolute(base, "base")
        if not os.path.isdir(path):
            raise NotFound(f"base directory {base!r} does not exist", details={"field": "base"})
        return BaseSpec("dir", path)
    path = _absolute(repo, "repo")
    if not isinstance(base, str) or not base:
        raise BadInput("'base' must name a commit of 'repo' (a sha, a branch or a tag)",
                       details={"field": "base"})
    if not _COMMITISH.match(base) or ".." in base:
        raise BadInput(f"'base' {base!r} is not a commit name", details={"field": "base"})
    if not os.path.isdir(path):
        raise NotFound(f"repository {repo!r} does not exist", details={"field": "repo"})
    return BaseSpec("git", path, resolve_commit(path, base))


def resolve_commit(repo: str, name: str) -> str:
    """The full sha of ``name`` in ``repo`` (E/NOT_FOUND when it is no commit there)."""
    try:
        proc = subprocess.run(["git", "-C", repo, "rev-parse", "--verify", "--quiet", "--end-of-options",
                               f"{name}^{{commit}}"], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except (OSError, subprocess.SubprocessError) as exc:
        raise NotFound(f"cannot ask git about {repo!r}: {exc}", details={"field": "repo"}) from None
    sha = proc.stdout.strip()
    if proc.returncode != 0 or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha):
        why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no such commit"
        raise NotFound(f"{name!r} is not a commit of {repo!r} ({why})", details={"field": "base"})
    return sha


def _weights(value: Any) -> Weights:
    if isinstance(value, str):
        return parse_weights(value)
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"alpha", "beta", "gamma"})
        if unknown:
            raise ValueError(f"unknown weight {unknown[0]!r}; use alpha, beta, gamma")
        defaults = Weights()
        vals = {k: value.get(k, getattr(defaults, k)) for k in ("alpha", "beta", "gamma")}
        for k, v in vals.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"weight {k} must be a number, got {v!r}")
        return Weights(**{k: float(v) for k, v in vals.items()})
    raise ValueError("weights must be a string 'alpha=..,beta=..,gamma=..' or an object")


def parse_options(obj: Any) -> RewardOptions:
    """``options`` of a request as RewardOptions (always in memory); E/BAD_INPUT."""
    if obj is None:
        obj = {}
    if not isinstance(obj, Mapping):
        raise BadInput("'options' must be an object", details={"field": "options"})
    unknown = sorted(set(obj) - set(OPTION_KEYS))
    if unknown:
        raise BadInput(f"unknown option {unknown[0]!r}; use {', '.join(OPTION_KEYS)}",
                       details={"field": f"options.{unknown[0]}"})
    field = "options"
    try:
        if obj.get("inMemory", True) is not True:
            field = "options.inMemory"
            raise ValueError("the service runs every session in memory: inMemory must be true")
        sev = obj.get("severity", ["error"])
        field = "options.severity"
        severities = (sev,) if isinstance(sev, str) else sev
        if not isinstance(severities, (list, tuple)) or not all(isinstance(s, str) for s in severities):
            raise ValueError("severity must be a name or a list of names")
        kwargs: dict[str, Any] = {"severities": tuple(severities) or ("error",), "in_memory": True}
        for key, name in (("scope", "scope"), ("diagTerm", "diag_term"), ("aggregate", "aggregate"),
                          ("byFile", "by_file")):
            if key in obj and obj[key] is not None:
                field = f"options.{key}"
                if not isinstance(obj[key], str):
                    raise ValueError(f"{key} must be a string")
                kwargs[name] = obj[key]
        if obj.get("weights") is not None:
            field = "options.weights"
            kwargs["weights"] = _weights(obj["weights"])
        if obj.get("clip") is not None:
            field = "options.clip"
            clip = obj["clip"]
            if isinstance(clip, bool) or not isinstance(clip, (int, float)):
                raise ValueError(f"clip must be a number, got {clip!r}")
            kwargs["clip"] = float(clip)
        field = "options"
        return RewardOptions(**kwargs)
    except ValueError as exc:
        raise BadInput(f"bad {field}: {exc}", details={"field": field}) from None


def options_json(options: RewardOptions) -> dict[str, Any]:
    """RewardOptions back in the request's spelling, exactly (what the workers are sent:
    ``parse_options(options_json(o)) == o``; the weights are not rounded)."""
    w = options.weights
    return {"severity": list(options.severities), "scope": options.scope, "diagTerm": options.diag_term,
            "weights": {"alpha": w.alpha, "beta": w.beta, "gamma": w.gamma}, "clip": options.clip,
            "aggregate": options.aggregate, "byFile": options.by_file}


def parse_step(obj: Any) -> Step:
    """A step of a request; a malformed one is E/BAD_INPUT (and is not taken)."""
    try:
        return validate_step(obj)
    except BadStep as exc:
        raise BadInput(exc.message, details=exc.details) from None


def error_from_json(obj: Mapping[str, Any]) -> LanserError:
    """A LanserError rebuilt from its ``to_json()`` (a worker's error, carried to the router)."""
    code = str(obj.get("code", "E/INTERNAL"))
    message, details = str(obj.get("message", "")), dict(obj.get("details") or {})
    cls = BY_CODE.get(code)
    if cls is not None and cls.__init__ is LanserError.__init__:
        return cls(message, details=details)
    exc = LanserError(message, details=details)
    exc.code = code
    exc.exit_code = int(obj.get("exitCode", 1))
    exc.retryable = obj.get("retryable", False)
    return exc


__all__ = ["BaseSpec", "OPTION_KEYS", "error_from_json", "options_json", "parse_base", "parse_options",
           "parse_step", "resolve_commit"]
