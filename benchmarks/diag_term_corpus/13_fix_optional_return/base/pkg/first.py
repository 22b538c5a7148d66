def first(xs: list[str]) -> str:
    return xs[0] if xs else None
