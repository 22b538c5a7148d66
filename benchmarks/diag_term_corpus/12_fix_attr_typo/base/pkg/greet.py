from pkg.models import User


def hello(u: User) -> str:
    return "hi " + u.nmae
