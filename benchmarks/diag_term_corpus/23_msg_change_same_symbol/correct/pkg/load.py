def load() -> dict[str, str]:
    return {"a": "1", "b": "1"}


def use() -> None:
    d = load()
    name: str = d["a"]
    k: bytes = d["b"]
    print(name, k)
