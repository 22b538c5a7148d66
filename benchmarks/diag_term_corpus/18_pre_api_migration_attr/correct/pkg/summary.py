from pkg.store import Store


def summarize(s: Store) -> int:
    rows = s.fetch_all()
    x: int = rows[0]
    y: int = rows[1]
    z: int = rows[2]
    return x + y + z
