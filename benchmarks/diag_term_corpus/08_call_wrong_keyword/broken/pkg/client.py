from pkg.net import connect


def open_default(h: str, p: int) -> str:
    return connect(host=h, prot=p)
