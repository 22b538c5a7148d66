def total(xs: list[int]) -> itn:
    return sum(xs)
