WS = re.compile(r"\s+")


def strip(s: str) -> str:
    return s.strip()


def squash(s: str) -> str:
    return re.sub(WS, " ", s)
