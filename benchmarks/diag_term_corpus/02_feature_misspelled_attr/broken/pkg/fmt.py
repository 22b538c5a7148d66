from pkg.models import User


def contact(u: User) -> str:
    return f"{u.name} <{u.emial}>"
