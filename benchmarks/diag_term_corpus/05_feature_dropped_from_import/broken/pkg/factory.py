DEFAULT_AGE = 30


def make_user(name: str) -> User:
    return User(name=name, email=f"{name}@example.org", age=DEFAULT_AGE)


def adults(users: list[User]) -> list[User]:
    return [u for u in users if u.age >= 18]
