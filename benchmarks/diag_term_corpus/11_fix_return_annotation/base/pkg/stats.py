def total(xs: list[int]) -> str:
    return sum(xs)
