def area(w: float, h: float) -> float:
    return w * h


def total_area(rects: list[tuple[float, float]]) -> float:
    return sum(area(w) for w, h in rects)
