def repeat(text: str, n: int) -> str:
    if n <= 0:
        return ""
    return text * n
