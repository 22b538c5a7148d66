from pkg.timeutil import parse_time as parse_ts


def newest(rows: list[dict[str, str]]) -> int:
    stamps = [parse_ts(r["ts"]) for r in rows]
    best: int = max(stamps)
    worst: int = min(stamps)
    return best - worst
