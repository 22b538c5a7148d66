def price(raw: str) -> str:
    return raw


def label(raw: str) -> bytes:
    return price(raw)


def double(raw: str) -> int:
    return price(raw) * 2
