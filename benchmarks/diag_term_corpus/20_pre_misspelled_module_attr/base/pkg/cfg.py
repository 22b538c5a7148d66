import json


def load_config(text: str) -> dict[str, str]:
    return dict(json.loads(text))


def port(text: str) -> int:
    cfg = load_config(text)
    p: int = cfg["port"]
    return p


def debug(text: str) -> bool:
    cfg = load_config(text)
    d: bool = cfg["debug"]
    return d
