def total(xs: list[int]) -> int:
    return sum(xs)
