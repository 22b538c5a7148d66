import re


def slugify(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def slugify_all(items: list[str]) -> list[str]:
    return [slugfy(s) for s in items]
