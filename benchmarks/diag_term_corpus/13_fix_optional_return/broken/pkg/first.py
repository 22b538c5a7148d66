def first(xs: list[str]) -> str | Nnoe:
    return xs[0] if xs else None
