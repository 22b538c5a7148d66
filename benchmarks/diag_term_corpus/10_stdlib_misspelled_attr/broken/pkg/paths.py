import os

ROOT = os.getcwd()


def data_file(name: str) -> str:
    return os.path.jion(ROOT, "data", name)
