def load(path: str) -> dict[str, str]:
    return {"count": "1", "size": "2", "path": path}


def report(path: str) -> int:
    data = load(path)
    n: int = int(data["count"])
    m: int = int(data["size"])
    return n + m
