"""``python -m lanser`` and the ``lanser`` console script."""

from __future__ import annotations


def main() -> int:
    from .cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
