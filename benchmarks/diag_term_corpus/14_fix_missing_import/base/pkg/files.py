"""Files."""

def config_path(root: str) -> Path:
    return Path(root) / "config.toml"


def exists(p: Path) -> bool:
    return p.exists()
