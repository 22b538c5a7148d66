def parse_ts(s: str) -> str:
    return s


def parse_time(s: str) -> str:
    return s
