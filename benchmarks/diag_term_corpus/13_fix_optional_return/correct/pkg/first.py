def first(xs: list[str]) -> str | None:
    return xs[0] if xs else None
