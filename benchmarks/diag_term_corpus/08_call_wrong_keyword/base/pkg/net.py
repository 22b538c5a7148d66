def connect(host: str, port: int, timeout: float = 5.0) -> str:
    return f"{host}:{port}/{timeout}"
