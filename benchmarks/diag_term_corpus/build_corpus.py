"""Write the diag-term corpus: one directory per case with ``base/`` (the whole tree),
``correct/`` and ``broken/`` (overlays: only the files the edit changes) and
``case.json`` (what the edit does and how the broken copy breaks it).

    .venv/bin/python benchmarks/diag_term_corpus/build_corpus.py

Groups (``case.json`` "group"):
- ``feature``: a clean base; the edit adds code; the broken copy misspells a
  name or attribute, drops an import or gets an argument count wrong.
- ``fix``: the base has errors the edit fixes; the broken copy is the fix
  with one such mistake.
- ``preexisting``: the base has errors the edit does not touch (as real code
  does); the broken copy's mistake makes their types Unknown.
- ``message-change``: the correct edit fixes one error and changes the text of
  another, still-valid one (a case built to hurt identity-based terms).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent

CASES: list[dict] = []


def case(name: str, group: str, breakage: str, base: dict[str, str], correct: dict[str, str],
         broken: dict[str, str], note: str = "") -> None:
    CASES.append({"name": name, "group": group, "breakage": breakage, "note": note,
                  "base": base, "correct": correct, "broken": broken})


# ---------------------------------------------------------------- feature
TEXT = '''import re


def slugify(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")
'''
case("feature_misspelled_call", "feature", "misspelled name",
     {"pkg/text.py": TEXT},
     {"pkg/text.py": TEXT + '''

def slugify_all(items: list[str]) -> list[str]:
    return [slugify(s) for s in items]
'''},
     {"pkg/text.py": TEXT + '''

def slugify_all(items: list[str]) -> list[str]:
    return [slugfy(s) for s in items]
'''})

MODELS = '''from dataclasses import dataclass


@dataclass
class User:
    name: str
    email: str
    age: int
'''
case("feature_misspelled_attr", "feature", "misspelled attribute",
     {"pkg/models.py": MODELS, "pkg/fmt.py": "from pkg.models import User\n"},
     {"pkg/fmt.py": '''from pkg.models import User


def contact(u: User) -> str:
    return f"{u.name} <{u.email}>"
'''},
     {"pkg/fmt.py": '''from pkg.models import User


def contact(u: User) -> str:
    return f"{u.name} <{u.emial}>"
'''})

case("feature_dropped_import", "feature", "dropped import",
     {"pkg/clean.py": "def strip(s: str) -> str:\n    return s.strip()\n"},
     {"pkg/clean.py": '''import re

WS = re.compile(r"\\s+")


def strip(s: str) -> str:
    return s.strip()


def squash(s: str) -> str:
    return re.sub(WS, " ", s)
'''},
     {"pkg/clean.py": '''WS = re.compile(r"\\s+")


def strip(s: str) -> str:
    return s.strip()


def squash(s: str) -> str:
    return re.sub(WS, " ", s)
'''})

GEOM = "def area(w: float, h: float) -> float:\n    return w * h\n"
case("feature_missing_argument", "feature", "wrong argument count",
     {"pkg/geom.py": GEOM},
     {"pkg/geom.py": GEOM + '''

def total_area(rects: list[tuple[float, float]]) -> float:
    return sum(area(w, h) for w, h in rects)
'''},
     {"pkg/geom.py": GEOM + '''

def total_area(rects: list[tuple[float, float]]) -> float:
    return sum(area(w) for w, h in rects)
'''})

case("feature_dropped_from_import", "feature", "dropped import",
     {"pkg/models.py": MODELS, "pkg/factory.py": "DEFAULT_AGE = 30\n"},
     {"pkg/factory.py": '''from pkg.models import User

DEFAULT_AGE = 30


def make_user(name: str) -> User:
    return User(name=name, email=f"{name}@example.org", age=DEFAULT_AGE)


def adults(users: list[User]) -> list[User]:
    return [u for u in users if u.age >= 18]
'''},
     {"pkg/factory.py": '''DEFAULT_AGE = 30


def make_user(name: str) -> User:
    return User(name=name, email=f"{name}@example.org", age=DEFAULT_AGE)


def adults(users: list[User]) -> list[User]:
    return [u for u in users if u.age >= 18]
'''})

case("refactor_rename_param", "feature", "misspelled name",
     {"pkg/util.py": '''def repeat(text: str, n: int) -> str:
    if n <= 0:
        return ""
    return text * n
'''},
     {"pkg/util.py": '''def repeat(text: str, count: int) -> str:
    if count <= 0:
        return ""
    return text * count
'''},
     {"pkg/util.py": '''def repeat(text: str, count: int) -> str:
    if count <= 0:
        return ""
    return text * n
'''})

CART = '''class Cart:
    def __init__(self) -> None:
        self.items: list[tuple[str, float]] = []

    def add(self, name: str, price: float) -> None:
        self.items.append((name, price))
'''
case("method_misspelled_self_attr", "feature", "misspelled attribute",
     {"pkg/cart.py": CART},
     {"pkg/cart.py": CART + '''
    def total(self) -> float:
        return sum(price for _, price in self.items)
'''},
     {"pkg/cart.py": CART + '''
    def total(self) -> float:
        return sum(price for _, price in self.itmes)
'''})

NET = '''def connect(host: str, port: int, timeout: float = 5.0) -> str:
    return f"{host}:{port}/{timeout}"
'''
case("call_wrong_keyword", "feature", "misspelled name",
     {"pkg/net.py": NET, "pkg/client.py": "from pkg.net import connect\n"},
     {"pkg/client.py": '''from pkg.net import connect


def open_default(h: str, p: int) -> str:
    return connect(host=h, port=p)
'''},
     {"pkg/client.py": '''from pkg.net import connect


def open_default(h: str, p: int) -> str:
    return connect(host=h, prot=p)
'''})

case("call_extra_argument", "feature", "wrong argument count",
     {"pkg/fmtnum.py": "def money(x: float) -> str:\n    return f\"{x:.2f}\"\n"},
     {"pkg/fmtnum.py": '''def money(x: float) -> str:
    return f"{x:.2f}"


def line(label: str, x: float) -> str:
    return label + ": " + money(x)
'''},
     {"pkg/fmtnum.py": '''def money(x: float) -> str:
    return f"{x:.2f}"


def line(label: str, x: float) -> str:
    return label + ": " + money(x, label)
'''})

case("stdlib_misspelled_attr", "feature", "misspelled attribute",
     {"pkg/paths.py": "import os\n\nROOT = os.getcwd()\n"},
     {"pkg/paths.py": '''import os

ROOT = os.getcwd()


def data_file(name: str) -> str:
    return os.path.join(ROOT, "data", name)
'''},
     {"pkg/paths.py": '''import os

ROOT = os.getcwd()


def data_file(name: str) -> str:
    return os.path.jion(ROOT, "data", name)
'''})

# ---------------------------------------------------------------- fix
case("fix_return_annotation", "fix", "misspelled name",
     {"pkg/stats.py": "def total(xs: list[int]) -> str:\n    return sum(xs)\n"},
     {"pkg/stats.py": "def total(xs: list[int]) -> int:\n    return sum(xs)\n"},
     {"pkg/stats.py": "def total(xs: list[int]) -> itn:\n    return sum(xs)\n"})

case("fix_attr_typo", "fix", "misspelled attribute",
     {"pkg/models.py": MODELS,
      "pkg/greet.py": "from pkg.models import User\n\n\ndef hello(u: User) -> str:\n    return \"hi \" + u.nmae\n"},
     {"pkg/greet.py": "from pkg.models import User\n\n\ndef hello(u: User) -> str:\n    return \"hi \" + u.name\n"},
     {"pkg/greet.py": "from pkg.models import User\n\n\ndef hello(u: User) -> str:\n    return \"hi \" + u.naem\n"})

case("fix_optional_return", "fix", "misspelled name",
     {"pkg/first.py": "def first(xs: list[str]) -> str:\n    return xs[0] if xs else None\n"},
     {"pkg/first.py": "def first(xs: list[str]) -> str | None:\n    return xs[0] if xs else None\n"},
     {"pkg/first.py": "def first(xs: list[str]) -> str | Nnoe:\n    return xs[0] if xs else None\n"})

FILES_BODY = '''

def config_path(root: str) -> Path:
    return Path(root) / "config.toml"


def exists(p: Path) -> bool:
    return p.exists()
'''
case("fix_missing_import", "fix", "misspelled name",
     {"pkg/files.py": '"""Files."""' + FILES_BODY},
     {"pkg/files.py": '"""Files."""\nfrom pathlib import Path\n' + FILES_BODY},
     {"pkg/files.py": '"""Files."""\nfrom pathlib import Paht\n' + FILES_BODY})

IMG = '''def resize(img: bytes, w: int, h: int) -> bytes:
    return img[: w * h]


def thumb(img: bytes) -> bytes:
    return resize(img, 10{args})
'''
case("fix_call_arguments", "fix", "wrong argument count",
     {"pkg/img.py": IMG.format(args="")},
     {"pkg/img.py": IMG.format(args=", 20")},
     {"pkg/img.py": IMG.format(args=", 20, 30")})

IDS = '''def get_ids() -> list[{t}]:
    return [1, 2, 3]


def first_id() -> int:
    x: int = get_ids()[0]
    return x


def last_id() -> int:
    y: int = get_ids()[-1]
    return y
'''
case("fix_downstream_types", "fix", "misspelled name",
     {"pkg/ids.py": IDS.format(t="str")},
     {"pkg/ids.py": IDS.format(t="int")},
     {"pkg/ids.py": IDS.format(t="itn")})

CONV = '''def load(path: str) -> dict[str, str]:
    return {{"count": "1", "size": "2", "path": path}}


def report(path: str) -> int:
    data = load(path)
    n: int = {n}
    m: int = {m}
    return n + m
'''
case("fix_two_conversions", "fix", "misspelled name",
     {"pkg/conv.py": CONV.format(n='data["count"]', m='data["size"]')},
     {"pkg/conv.py": CONV.format(n='int(data["count"])', m='int(data["size"])')},
     {"pkg/conv.py": CONV.format(n='int(dta["count"])', m='int(dta["size"])')})

# ---------------------------------------------------------------- preexisting
STORE = '''class Store:
    def fetch(self) -> list[str]:
        return ["1", "2", "3"]

    def fetch_all(self) -> list[str]:
        return self.fetch()
'''
SUMMARY = '''from pkg.store import Store


def summarize(s: Store) -> int:
    rows = s.{call}()
    x: int = rows[0]
    y: int = rows[1]
    z: int = rows[2]
    return x + y + z
'''
case("pre_api_migration_attr", "preexisting", "misspelled attribute",
     {"pkg/store.py": STORE, "pkg/summary.py": SUMMARY.format(call="fetch")},
     {"pkg/summary.py": SUMMARY.format(call="fetch_all")},
     {"pkg/summary.py": SUMMARY.format(call="fetch_al")},
     note="task: move to fetch_all; three pre-existing int/str errors stay")

HELPERS = '''def parse(text: str) -> list[str]:
    return text.split(",")
'''
JOBS = '''{imp}


def run(text: str) -> int:
    parts = helpers.parse(text)
    a: int = parts[0]
    b: int = parts[1]
    return a + b


def size(text: str) -> int:
    return len(text)
'''
case("pre_import_style", "preexisting", "dropped import",
     {"pkg/helpers.py": HELPERS, "pkg/jobs.py": JOBS.format(imp="import pkg.helpers as helpers")},
     {"pkg/jobs.py": JOBS.format(imp="from pkg import helpers")},
     {"pkg/jobs.py": JOBS.format(imp="import pkg")},
     note="task: switch import style; two pre-existing errors stay")

CFG = '''import json


def load_config(text: str) -> dict[str, str]:
    return {call}


def port(text: str) -> int:
    cfg = load_config(text)
    p: int = cfg["port"]
    return p


def debug(text: str) -> bool:
    cfg = load_config(text)
    d: bool = cfg["debug"]
    return d
'''
case("pre_misspelled_module_attr", "preexisting", "misspelled attribute",
     {"pkg/cfg.py": CFG.format(call="dict(json.loads(text))")},
     {"pkg/cfg.py": CFG.format(call="dict(json.loads(text, parse_float=str))")},
     {"pkg/cfg.py": CFG.format(call="dict(jsn.loads(text, parse_float=str))")},
     note="task: pass parse_float; the int/bool errors downstream are pre-existing")

TEMP = '''def read_celsius(raw: str) -> str:
    return raw.strip()


def to_kelvin(raw: str) -> float:
    c: float = {expr}
    return c + 273.15


def is_freezing(raw: str) -> bool:
    c: float = read_celsius(raw)
    return c <= 0
'''
case("pre_wrong_argument_count", "preexisting", "wrong argument count",
     {"pkg/temp.py": TEMP.format(expr="read_celsius(raw)")},
     {"pkg/temp.py": TEMP.format(expr="float(read_celsius(raw))")},
     {"pkg/temp.py": TEMP.format(expr="float(read_celsius(raw, 1))")},
     note="task: fix to_kelvin; the is_freezing error is pre-existing and stays")

ORDERS = '''{imp}


def newest(rows: list[dict[str, str]]) -> int:
    stamps = [parse_ts(r["ts"]) for r in rows]
    best: int = max(stamps)
    worst: int = min(stamps)
    return best - worst
'''
case("pre_renamed_import", "preexisting", "misspelled name",
     {"pkg/timeutil.py": "def parse_ts(s: str) -> str:\n    return s\n\n\ndef parse_time(s: str) -> str:\n    return s\n",
      "pkg/orders.py": ORDERS.format(imp="from pkg.timeutil import parse_ts")},
     {"pkg/orders.py": ORDERS.format(imp="from pkg.timeutil import parse_time as parse_ts")},
     {"pkg/orders.py": ORDERS.format(imp="from pkg.timeutil import parse_tim as parse_ts")},
     note="task: use parse_time; two pre-existing int/str errors stay")

# ---------------------------------------------------------------- message-change
LOAD = '''def load() -> dict[str, {t}]:
    return {{"a": {v}, "b": {v}}}


def use() -> None:
    d = load()
    name: str = d["a"]
    k: bytes = d["b"]
    print(name, k)
'''
case("msg_change_same_symbol", "message-change", "misspelled name",
     {"pkg/load.py": LOAD.format(t="int", v="1")},
     {"pkg/load.py": LOAD.format(t="str", v='"1"')},
     {"pkg/load.py": LOAD.format(t="sr", v='"1"')},
     note="correct: the str error is fixed, the bytes error's message changes int->str")

PRICE = '''def price(raw: str) -> {t}:
    return {ret}


def label(raw: str) -> bytes:
    return price(raw)


def double(raw: str) -> int:
    return price(raw) * 2
'''
case("msg_change_other_symbol", "message-change", "misspelled name",
     {"pkg/price.py": PRICE.format(t="str", ret="raw")},
     {"pkg/price.py": PRICE.format(t="int", ret="int(raw)")},
     {"pkg/price.py": PRICE.format(t="itn", ret="int(raw)")},
     note="correct: double() is fixed, label()'s error changes str->int")


def main() -> int:
    for old in HERE.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
    for i, c in enumerate(CASES, start=1):
        root = HERE / f"{i:02d}_{c['name']}"
        for part in ("base", "correct", "broken"):
            for rel, text in c[part].items():
                (root / part / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / part / rel).write_text(text, encoding="utf-8")
        if "pkg/__init__.py" not in c["base"]:
            (root / "base" / "pkg" / "__init__.py").write_text("", encoding="utf-8")
        meta = {k: c[k] for k in ("name", "group", "breakage", "note")}
        (root / "case.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"{len(CASES)} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
