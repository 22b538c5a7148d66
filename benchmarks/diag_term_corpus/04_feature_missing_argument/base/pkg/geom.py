def area(w: float, h: float) -> float:
    return w * h
