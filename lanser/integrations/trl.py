"""TRL (``GRPOTrainer``): an ``environment_factory`` class with edit and query tools, and a
``reward_funcs`` callable for one-shot patches.  TRL wants one scalar per completion: the
per-step rewards are collapsed (``sum`` or ``min``; README, "RL integrations").

    trainer = GRPOTrainer(model=..., train_dataset=ds,            # ds has a "repo" column
                          environment_factory=LanserEnvironment)  # tools + get_reward
    trainer = GRPOTrainer(model=..., train_dataset=ds,
                          reward_funcs=[LanserPatchReward()])     # one patch per completion

How TRL 1.16.0 calls them (``trl/trainer/grpo_trainer.py``):

- ``environment_factory``: one instance per rollout, pooled and reused; every
  public method other than ``reset``/``get_reward`` becomes a tool
  (``inspect.getmembers(type(env), inspect.isfunction)``; its schema from the
  type hints and the Google docstring), called as ``tool(**arguments)``;
  ``reset(**row)`` once per rollout with the dataset row; ``get_reward()``
  once per finished rollout, as an extra reward function named after the class.
- ``reward_funcs``: ``f(prompts=, completions=, completion_ids=, **columns,
  trainer_state=, log_extra=, log_metric=[, environments=])`` -> one float (or
  None) per completion.

Configuration: the repository per row (column ``repo``, or the constructor's
``repo``), ``url``/``base`` for the reward service, ``options`` for ``lanser
reward``, ``aggregate`` (``sum``|``min``) for ``get_reward``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..rewards.formula import AGGREGATES
from .actions import parse_action
from .episode import Episode, client_for


def _check_mode(mode: str) -> str:
    if mode not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {mode!r}")
    return mode


class LanserEnvironment:
    """One rollout in one Lanser session; the tools are its public methods."""

    def __init__(self, repo: str | None = None, *, url: str | None = None, base: str | None = None,
                 options: Mapping[str, Any] | None = None, aggregate: str = "sum",
                 repo_column: str = "repo", client: Any = None) -> None:
        self._config = {"repo": repo, "url": url, "base": base, "options": dict(options or {}),
                        "client": client}
        self._aggregate = _check_mode(aggregate)
        self._repo_column = repo_column
        self._episode: Episode | None = None
        self._final: dict[str, Any] | None = None

    def reset(self, **row: Any) -> str | None:
        """Start a rollout on the row's repository (the dataset row as keyword arguments)."""
        self._close()
        cfg = self._config
        repo = row.get(self._repo_column) or cfg["repo"]
        self._episode = Episode(client_for(repo, client=cfg["client"], url=cfg["url"], base=cfg["base"],
                                           options=cfg["options"]))
        self._final = None
        return None

    def _take(self, step: dict[str, Any]) -> str:
        if self._episode is None:
            raise RuntimeError("reset() the environment first")
        return self._episode.take(step).observation

    def apply_patch(self, patch: str) -> str:
        """Apply a unified diff to the repository (checked: inside the repository, applies cleanly, still parses).

        Args:
            patch: The unified diff, as git diff prints it.

        Returns:
            What the step did to the type checker's diagnostics, and its reward.
        """
        return self._take({"op": "patch", "patch": patch})

    def write_file(self, path: str, content: str) -> str:
        """Create or overwrite a file of the repository.

        Args:
            path: The file's path relative to the repository root.
            content: The file's whole new text.

        Returns:
            What the step did to the type checker's diagnostics, and its reward.
        """
        return self._take({"op": "write", "path": path, "content": content})

    def replace_symbol(self, selector: str, text: str) -> str:
        """Replace what a selector resolves to, e.g. a function body.

        Args:
            selector: A Lanser selector, e.g. py://pkg.mod#Class.method:body or src/app.py@L42:C7.
            text: The replacement text.

        Returns:
            What the step did to the type checker's diagnostics, and its reward.
        """
        return self._take({"op": "edit", "selector": selector, "text": text})

    def rename_symbol(self, selector: str, new_name: str) -> str:
        """Rename a symbol everywhere it is used.

        Args:
            selector: A Lanser selector of the symbol, e.g. py://pkg.mod#function.
            new_name: The new name.

        Returns:
            What the step did to the type checker's diagnostics, and its reward.
        """
        return self._take({"op": "rename", "selector": selector, "newName": new_name})

    def find_references(self, selector: str) -> str:
        """List every reference to a symbol.

        Args:
            selector: A Lanser selector of the symbol, e.g. py://pkg.mod#function.

        Returns:
            The references (paths and ranges).
        """
        return self._take({"op": "query", "cmd": "refs", "selector": selector})

    def go_to_definition(self, selector: str) -> str:
        """Find where a name is defined.

        Args:
            selector: A Lanser selector of the name, e.g. src/app.py@L42:C7.

        Returns:
            The definitions (paths and ranges).
        """
        return self._take({"op": "query", "cmd": "def", "selector": selector})

    def hover(self, selector: str) -> str:
        """Show the type and documentation of a name.

        Args:
            selector: A Lanser selector of the name, e.g. py://pkg.mod#Class.

        Returns:
            The type checker's hover text.
        """
        return self._take({"op": "query", "cmd": "hover", "selector": selector})

    def get_reward(self) -> float:
        """The rollout's aggregate of its step rewards (``sum`` or ``min``); ends the session."""
        self._close()
        final = self._final or {}
        return float(final.get("return", 0.0))

    def _close(self) -> None:
        if self._episode is not None:
            self._final = self._episode.finish(self._aggregate)
            self._episode = None

    @property
    def _records(self) -> list[dict[str, Any]]:
        return list((self._final or {}).get("records") or (self._episode.records if self._episode else []))


def _completion_text(completion: Any) -> str:
    """A completion as TRL passes it: a string, or a list of messages (conversational)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        for msg in reversed(list(completion)):
            if isinstance(msg, Mapping) and msg.get("role", "assistant") == "assistant":
                content = msg.get("content")
                if isinstance(content, list):
                    content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
                return str(content or "")
    return str(completion)


class LanserPatchReward:
    """``reward_funcs`` entry: each completion holds one action (a ```diff block or a JSON step,
    :mod:`lanser.integrations.actions`), scored as a one-step trajectory from the row's base.

    A completion without an action gets the record of an invalid step (``-beta``); a
    ``submit`` without a change gets ``None`` (TRL then ignores this function for it)."""

    __name__ = "lanser_patch"

    def __init__(self, repo: str | None = None, *, url: str | None = None, base: str | None = None,
                 options: Mapping[str, Any] | None = None, repo_column: str = "repo", client: Any = None) -> None:
        self.repo, self.url, self.base = repo, url, base
        self.options = dict(options or {})
        self.repo_column = repo_column
        self.client = client

    def __call__(self, prompts: list[Any], completions: list[Any], completion_ids: Any = None,
                 **kwargs: Any) -> list[float | None]:
        repos = kwargs.get(self.repo_column) or [self.repo] * len(completions)
        out: list[float | None] = []
        refused = 0
        for completion, repo in zip(completions, repos):
            action = parse_action(_completion_text(completion))
            if action.submit or action.step is None:
                out.append(None)
                continue
            client = client_for(repo or self.repo, client=self.client, url=self.url, base=self.base,
                                options=self.options)
            record = client.score([action.step])[0]
            refused += record.get("status") == "error"
            out.append(float(record["processReward"]["r"]))
        log_metric = kwargs.get("log_metric")
        if callable(log_metric) and completions:
            log_metric("lanser/refused", refused / len(completions))
        return out


__all__ = ["LanserEnvironment", "LanserPatchReward"]
