def get_ids() -> list[int]:
    return [1, 2, 3]


def first_id() -> int:
    x: int = get_ids()[0]
    return x


def last_id() -> int:
    y: int = get_ids()[-1]
    return y
