def read_celsius(raw: str) -> str:
    return raw.strip()


def to_kelvin(raw: str) -> float:
    c: float = float(read_celsius(raw))
    return c + 273.15


def is_freezing(raw: str) -> bool:
    c: float = read_celsius(raw)
    return c <= 0
