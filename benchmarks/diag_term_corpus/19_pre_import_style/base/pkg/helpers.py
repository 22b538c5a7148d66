def parse(text: str) -> list[str]:
    return text.split(",")
