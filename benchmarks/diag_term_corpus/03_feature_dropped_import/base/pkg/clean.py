def strip(s: str) -> str:
    return s.strip()
