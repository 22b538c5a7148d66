def money(x: float) -> str:
    return f"{x:.2f}"


def line(label: str, x: float) -> str:
    return label + ": " + money(x)
