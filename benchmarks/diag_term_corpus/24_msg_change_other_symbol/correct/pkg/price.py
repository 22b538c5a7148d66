def price(raw: str) -> int:
    return int(raw)


def label(raw: str) -> bytes:
    return price(raw)


def double(raw: str) -> int:
    return price(raw) * 2
