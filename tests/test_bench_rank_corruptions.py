"""benchmarks/bench_rank_commits.py: commit selection and the seeded corruptions (no server).

A two-commit repository is made with git; the second commit adds code that uses a
local name, an attribute, an import and a call of a package function.  Every kind
of corruption must be found inside the added lines (imports: one the new code
needs), parse, do what it says, and be the same for the same seed.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import write_tree

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_rank_commits.py"

BASE = {
    "src/pkg/__init__.py": "",
    "src/pkg/util.py": "def helper(a: int, b: int) -> int:\n    return a + b\n",
    "src/pkg/core.py": "import os\n\n\ndef old() -> str:\n    return os.sep\n",
    "tests/test_x.py": "def test_x():\n    pass\n",
}
NEW_CORE = (
    "import os\n"
    "from collections import OrderedDict\n"
    "\n"
    "from .util import helper\n"
    "\n"
    "\n"
    "def old() -> str:\n"
    "    return os.sep\n"
    "\n"
    "\n"
    "def added(values: list[str]) -> int:\n"
    "    total = helper(len(values), 2)\n"
    "    table = OrderedDict()\n"
    "    table['k'] = values\n"
    "    return total + len(os.path.join(*values))\n"
)


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_rank_commits", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_rank_commits"] = mod
    spec.loader.exec_module(mod)
    return mod


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z",
                        "GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z", "PATH": "/usr/bin:/bin:/usr/local/bin",
                        "HOME": str(root)})


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    _git(root, "init", "-q", "-b", "main")
    write_tree(root, BASE)
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "base")
    write_tree(root, {"src/pkg/core.py": NEW_CORE, "tests/test_x.py": "def test_x():\n    assert 1\n"})
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "add added()")
    return root


def _selected(bench, repo: Path, seed: int = 0):
    git = bench.Git(str(repo))
    head = git.rev("HEAD")
    packages = bench.packages_at(git, head)
    assert packages == ["pkg"]
    skipped: Counter[str] = Counter()
    commits = list(bench.candidate_commits(git, head, packages, 4, 200, skipped))
    assert len(commits) == 1 and skipped["root commit"] == 1
    commit = commits[0]
    assert commit.roots == ["src/pkg"] and list(commit.files) == ["src/pkg/core.py"]  # tests left out
    index, words = bench.package_index(commit, bench.tree_texts(git, commit.sha, commit.roots))
    return commit, bench.corruptions(commit, seed, index, words)


@pytest.mark.parametrize("seed", range(8))
def test_every_kind_inside_the_added_lines(bench, repo: Path, seed: int) -> None:
    commit, corrupt = _selected(bench, repo, seed)
    assert [c.kind for c in corrupt] == ["name", "attr", "import", "arity"]
    added = commit.added_lines["src/pkg/core.py"]
    for c in corrupt:
        ast.parse(c.text)  # still parses
        assert c.text != NEW_CORE
        if c.kind != "import":
            assert c.line in added, c
    by = {c.kind: c for c in corrupt}
    binds = bench.bindings(ast.parse(by["name"].text))
    new_name = by["name"].what.split(" -> ")[1]
    assert binds[new_name] == 0 and new_name not in bench.WORD_RE.findall(NEW_CORE)
    assert by["import"].needed
    dropped = by["import"].what
    assert "OrderedDict" in dropped or "helper" in dropped or "os" in dropped
    call = [n for n in ast.walk(ast.parse(by["arity"].text)) if isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name) and n.func.id == "helper"]
    assert len(call) == 1 and len(call[0].args) in (1, 3)


def test_deterministic_per_seed(bench, repo: Path) -> None:
    _, a = _selected(bench, repo, seed=0)
    _, b = _selected(bench, repo, seed=0)
    assert [(c.kind, c.text) for c in a] == [(c.kind, c.text) for c in b]


def test_patch_round_trip(bench, repo: Path) -> None:
    """The real edit as a patch applies to the base text and gives the commit's text."""
    from lanser.edits.diff import apply_hunks, parse_unified_diff

    commit, _ = _selected(bench, repo)
    patch = bench.make_patch(commit.files)
    (fp,) = parse_unified_diff(patch)
    old, new = commit.files[fp.old_path]
    assert apply_hunks(old or "", fp.hunks, path=fp.old_path) == new
