"""SkyRL-Gym: a ``BaseTextEnv`` whose every turn is one Lanser step (per-step rewards, natively).

    import lanser.integrations.skyrl            # registers the env id "lanser" with skyrl_gym
    env = skyrl_gym.make("lanser", env_config={"options": {"clip": 5}},
                         extras={"repo": "/data/tasks/shop", "max_turns": 8})
    obs, meta = env.init(prompt)                # opens a session on the repo's shared warm server
    out = env.step(agent_text)                  # {"observations", "reward", "done", "metadata"}

SkyRL's generator (``skyrl_train/generators/skyrl_gym_generator.py``) calls
``skyrl_gym.make(env_class, env_config=..., extras=row_extras)``, then
``init`` once and ``step`` per assistant turn until ``done``, placing each
turn's reward on that turn's last token: Lanser's per-step reward survives
as is.

- The action text follows :mod:`lanser.integrations.actions` (a ```diff
  block, a ```json step, or ``submit``); every edit goes through Lanser's
  safety envelope (jail, parse check, all-or-nothing apply) on an in-memory
  overlay: the repository is never written.
- ``reward`` = the step record's ``processReward.r``; the observation (a user
  message) lists the diagnostics the step introduced and resolved, or the
  refusal; ``metadata["lanser"]`` is the whole record.
- ``done`` on ``submit`` or after ``max_turns`` (from ``extras``, default 8).
- Configuration, ``extras`` over ``env_config``: ``repo`` (the task's
  directory; also read from ``extras["extra_info"]["repo"]``), ``url`` (a
  ``lanser serve`` address, optional), ``base``, ``options`` (``lanser reward``
  options: ``clip``, ``diag_term``, ``severities``, ``weights``),
  ``aggregate`` (``sum``|``min``, for the episode's metrics).
"""

from __future__ import annotations

from typing import Any, Mapping

from .episode import Episode, client_for

ENV_ID = "lanser"

try:  # the framework is optional: ``pip install 'lanser[skyrl]'``
    from skyrl_gym.envs.base_text_env import BaseTextEnv, BaseTextEnvStepOutput  # pyright: ignore
except ImportError as _exc:  # pragma: no cover - exercised only without the extra
    _IMPORT_ERROR: ImportError | None = _exc

    class BaseTextEnv:  # type: ignore[no-redef]
        def __init__(self) -> None:
            raise ImportError("lanser.integrations.skyrl needs skyrl-gym: pip install 'lanser[skyrl]'") \
                from _IMPORT_ERROR

    BaseTextEnvStepOutput = dict  # type: ignore[misc,assignment]
else:
    _IMPORT_ERROR = None


def _get(cfg: Any, key: str, default: Any = None) -> Any:
    if cfg is None:
        return default
    if isinstance(cfg, Mapping):
        return cfg.get(key, default)
    return getattr(cfg, key, default)


def _plain(value: Any) -> Any:
    """OmegaConf containers (SkyRL passes them) as plain Python values."""
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(value):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return value


class LanserEnv(BaseTextEnv):  # type: ignore[misc]
    """See the module docstring."""

    def __init__(self, env_config: Any = None, extras: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        extras = dict(_plain(extras) or {})
        cfg = _plain(env_config) or {}

        def pick(key: str, default: Any = None) -> Any:
            info = extras.get("extra_info") or {}
            return extras.get(key, info.get(key) if isinstance(info, Mapping) else None) or _get(cfg, key, default)

        self.max_turns = int(pick("max_turns", 8))
        self.aggregate = str(pick("aggregate", "sum"))
        self.episode = Episode(client_for(pick("repo"), client=extras.get("client"), url=pick("url"),
                                          base=pick("base"), options=pick("options"), engine=pick("engine"),
                                          token=pick("token")))
        self.final: dict[str, Any] | None = None

    def init(self, prompt: list[dict[str, str]]) -> tuple[list[dict[str, str]], dict[str, Any]]:
        return prompt, {"session": self.episode.begin()}

    def step(self, action: str) -> Any:  # a BaseTextEnvStepOutput
        self.turns += 1
        turn = self.episode.act(action)
        done = turn.done or self.turns >= self.max_turns
        observations = [] if done else [{"role": "user", "content": turn.observation}]
        metadata = {"lanser": turn.record, "observation": turn.observation}
        return BaseTextEnvStepOutput(observations=observations, reward=turn.reward, done=done,  # pyright: ignore
                                     metadata=metadata)

    def close(self) -> None:
        self.final = self.episode.finish(self.aggregate)

    def get_metrics(self) -> dict[str, Any]:
        recs = self.episode.records
        return {
            "lanser_steps": len(recs),
            "lanser_reward_sum": sum(self.episode.rewards),
            "lanser_reward_min": min(self.episode.rewards) if recs else 0.0,
            "lanser_refused": sum(1 for r in recs if r.get("status") == "error"),
            "lanser_errors": recs[-1]["diagnostics"]["errors"] if recs else 0,
        }


def register(env_id: str = ENV_ID) -> str:
    """Register :class:`LanserEnv` with skyrl_gym under ``env_id`` (idempotent; skyrl_gym
    raises on a second registration of one id)."""
    import skyrl_gym

    if env_id not in skyrl_gym.registry:
        skyrl_gym.register(id=env_id, entry_point="lanser.integrations.skyrl:LanserEnv")
    return env_id


if _IMPORT_ERROR is None:
    register()


__all__ = ["ENV_ID", "LanserEnv", "register"]
