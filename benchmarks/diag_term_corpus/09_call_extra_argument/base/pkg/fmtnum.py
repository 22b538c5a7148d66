def money(x: float) -> str:
    return f"{x:.2f}"
