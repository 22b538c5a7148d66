import pkg


def run(text: str) -> int:
    parts = helpers.parse(text)
    a: int = parts[0]
    b: int = parts[1]
    return a + b


def size(text: str) -> int:
    return len(text)
