def repeat(text: str, count: int) -> str:
    if count <= 0:
        return ""
    return text * n
