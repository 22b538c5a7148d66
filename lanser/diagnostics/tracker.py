"""Step by step: which checked files to pull again (the affected-files rule, kept warm).

:mod:`lanser.diagnostics.affected` is the pure rule; this module feeds it.  It
keeps every workspace Python file's parse (imports and interface) keyed on its
text, re-parsing only what a step changed, and the import graph, rebuilt only
when some file's imports changed.  Before a step reaches the server it asks
the server for the types of the functions whose bodies alone changed
(:mod:`lanser.diagnostics.exports`), and after it for their new types, so an
export that kept its type is not a changed export.  The libraries that can
reach a workspace module (:mod:`lanser.diagnostics.libraries`) are asked of
``libraries`` (a callable: the engine answers it from the environment, a
replay from the trace) for every new library name the workspace imports.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from ..errors import LanserError
from ..server.session import Session
from ..workspace import decode_source
from .affected import FileImports, ImportGraph, affected_files, analyze
from .exports import MAX_HOVERS, TypeCheck, limited
from .interface import Func, Interface, body_changes, direct_changes, probes_for
from .members import MemberChange, member_changes, settle

LibraryFact = Callable[[frozenset[str], frozenset[str], frozenset[str]], frozenset[str]]
PY_SUFFIXES = (".py", ".pyi")
RECENT_PARSES = 64  # parses kept beyond each file's current and previous one


@dataclass(frozen=True)
class Parsed:
    text: str
    imports: FileImports | None
    interface: Interface | None


@dataclass(frozen=True)
class _Later:
    """Importer questions held back until a body-only change is known to change a type:
    per changed file, its names judged by their own functions' types; the files' old texts;
    every file the step changes."""

    names: dict[str, frozenset[str]]
    old_texts: dict[str, str]
    changing: set[str]


def _decoded(rel: str, data: bytes) -> str | None:
    try:
        return decode_source(data, rel).text
    except LanserError:
        return None


class ChangeTracker:
    """The affected-files rule over one run: parses, pending changes, the graph, type checks.

    ``stdlib``: the standard-library names of the pinned typeshed; ``cycles``: the
    configuration checks import cycles (then every Python change pulls everything);
    ``libraries(external, workspace_tops, stdlib)``: which of ``external`` reach a workspace
    module (None: unknown, the rule assumes any may)."""

    def __init__(self, *, stdlib: frozenset[str], cycles: bool, libraries: LibraryFact | None,
                 roots: tuple[str, ...] = ("", "src")) -> None:
        self.stdlib = stdlib
        self.roots = roots
        self.cycles = cycles
        self.library_fact = libraries
        self.parsed: dict[str, Parsed] = {}
        self._spare: dict[str, Parsed] = {}
        self._recent: OrderedDict[tuple[str, str], Parsed] = OrderedDict()  # (rel, text): LRU
        self.files: set[str] = set()          # the workspace's Python files at the last pull
        self.pending: dict[str, str] = {}     # rel -> created|changed|deleted since the last pull
        self.before: dict[str, bytes | None] = {}  # changed file -> its bytes at the last pull
        self.same_type: dict[str, frozenset[str]] = {}
        self._graph: ImportGraph | None = None
        self._examined: frozenset[str] = frozenset()   # library names already asked about
        self._reaching: frozenset[str] = frozenset()
        self._check: TypeCheck | None = None
        self._later: _Later | None = None
        self._classes: dict[str, dict[str, MemberChange]] = {}  # changed classes judged by member
        self.members: set[str] = set()        # members whose type changed since the last pull

    # -- parsing -----------------------------------------------------------------------------
    def parse(self, rel: str, text: str) -> Parsed:
        """``rel``'s parse for ``text``, made current (the previous one is kept aside: a step
        compares the two, and a failed or restored step brings the old one back)."""
        cached = self.parsed.get(rel)
        if cached is not None and cached.text == text:
            return cached
        spare = self._spare.get(rel)
        if spare is None or spare.text != text:
            spare = self._analyze(rel, text)
        if cached is not None:
            self._spare[rel] = cached
        self.parsed[rel] = spare
        return spare

    def interface(self, rel: str, data: bytes | None) -> Interface | None:
        """The interface of ``rel`` with content ``data`` (parsed once per text, not made
        current)."""
        text = _decoded(rel, data) if data is not None else None
        if text is None:
            return None
        for cached in (self.parsed.get(rel), self._spare.get(rel)):
            if cached is not None and cached.text == text:
                return cached.interface
        self._spare[rel] = parsed = self._analyze(rel, text)
        return parsed.interface

    def _analyze(self, rel: str, text: str) -> Parsed:
        """``rel``'s parse for ``text``, from the recent ones when it was seen lately: the
        sessions of a shared server switch the same files between their own texts at every
        step, and parsing them again cost more than the rest of the step's own work."""
        key = (rel, text)
        found = self._recent.get(key)
        if found is not None:
            self._recent.move_to_end(key)
            return found
        imports, interface = analyze(rel, text)
        found = self._recent[key] = Parsed(text, imports, interface)
        while len(self._recent) > RECENT_PARSES:
            self._recent.popitem(last=False)
        return found

    def prime(self, texts: Mapping[str, str]) -> None:
        """Parse every file (run in a worker thread while the server checks the workspace)."""
        for rel, text in texts.items():
            self.parse(rel, text)

    def reset(self, files: Iterable[str]) -> None:
        """A full pull happened: ``files`` are the workspace's Python files now."""
        self.files = set(files)
        self.pending.clear()
        self.before.clear()
        self.same_type.clear()
        self._check = None
        self._later = None
        self._classes = {}
        self.members = set()
        for rel in set(self.parsed) - self.files:
            del self.parsed[rel]
        self._spare.clear()
        self._graph = None

    def prepare(self, text_of: Callable[[str], str | None]) -> None:
        """Build the import graph and ask the library fact now (at the start, not on the first
        step's clock)."""
        self._libraries(self._update_graph({}, text_of))

    def absorb(self, files: Iterable[str], paths: Iterable[str], text_of: Callable[[str], str | None]) -> None:
        """The workspace switched to another state whose diagnostics are known (``files``: its
        Python files; ``paths``: the files that differ): parse them, pull nothing."""
        self.files = set(files)
        self.pending.clear()
        self.before.clear()
        self.same_type.clear()
        self._check = None
        self._later = None
        self._classes = {}
        self.members = set()
        self._update_graph({rel: "changed" for rel in paths}, text_of)

    # -- a step --------------------------------------------------------------------------------
    def note(self, path: str, before: bytes | None, after: bytes | None) -> None:
        """A file the step changed (``before`` is what the server saw until now)."""
        kind = "deleted" if after is None else "created" if before is None else "changed"
        if path not in self.pending and kind == "changed" and path.endswith(PY_SUFFIXES):
            self.before[path] = before  # the text as the last pull saw it
        if self.pending.get(path, "changed") == "changed" or kind != "changed":
            self.pending[path] = kind
        if path.endswith(PY_SUFFIXES):
            (self.files.discard if after is None else self.files.add)(path)

    async def ask_types_before(self, session: Session,
                               changes: Iterable[tuple[str, bytes | None, bytes | None]]) -> None:
        """Before the server sees a step: the types of the functions whose bodies alone
        changed, at their old positions (``changes``: path, bytes before, bytes after), and of
        the importers' names that use a name changed otherwise (a new signature, a member).

        A body-only change is judged first: its importers are asked about only when the
        function's type did change (:meth:`ask_types_after`), which most body edits do not."""
        candidates: dict[str, dict[str, list[tuple[Func, Func]]]] = {}
        direct: dict[str, frozenset[str]] = {}
        old_texts: dict[str, str] = {}
        self._classes = {}
        changes = list(changes)
        for rel, before, after in changes:
            if before is None or after is None or not rel.endswith(PY_SUFFIXES):
                continue
            old, new = self.interface(rel, before), self.interface(rel, after)
            if old is not None and new is not None:
                found = body_changes(old, new)
                if found:
                    candidates[rel] = found
                names = direct_changes(old, new)
                if names:
                    direct[rel] = names
                text, text_after = _decoded(rel, before), _decoded(rel, after)
                if text is not None:
                    old_texts[rel] = text
                if names and text is not None and text_after is not None:
                    classes = member_changes(rel, text, text_after, names)
                    if classes:
                        self._classes[rel] = classes
                        found = {n: pairs for n, pairs in found.items() if n not in classes}
                        for change in classes.values():
                            found.update(change.probes)
                        candidates[rel] = found
        probes = limited(candidates)
        later = {rel: (frozenset(probes.get(rel, {})) & names) | frozenset(self._classes.get(rel, {}))
                 for rel, names in direct.items() if rel in old_texts}
        now = {rel: rest for rel, names in direct.items() if (rest := names - later.get(rel, frozenset()))}
        budget = MAX_HOVERS - sum(len(p) for names in probes.values() for p in names.values())
        changing = {rel for rel, _, _ in changes}
        importers = limited(self._importer_probes(now, changing), budget)
        probes.update(importers)
        self._check = None
        self._later = _Later({rel: names for rel, names in later.items() if names}, old_texts, changing)
        check = TypeCheck(probes, frozenset(importers))
        if probes:
            await check.ask_before(session)
            self._check = check

    def _importer_probes(self, direct: Mapping[str, frozenset[str]],
                         changing: set[str]) -> dict[str, dict[str, list[tuple[Func, Func]]]]:
        """For the files importing a changed module (and not changed themselves): their names
        bound by statements that use a changed name, and where to ask their types (the same
        place before and after: the importer's text does not change)."""
        graph = self._graph
        out: dict[str, dict[str, list[tuple[Func, Func]]]] = {}
        if graph is None:
            return out
        for rel in sorted(direct):
            for importer in sorted(graph.importers(rel) - changing):
                parsed = self.parsed.get(importer)
                if parsed is None or parsed.interface is None or graph.wildcard_importer(importer, rel):
                    continue
                own = graph.module_bindings(importer, rel, parsed.interface) & parsed.interface.bare
                names = direct[rel] | own
                if not (parsed.interface.identifiers & names):
                    continue
                found = probes_for(importer, parsed.text, names)
                for name, funcs in found.items():
                    out.setdefault(importer, {})[name] = [(f, f) for f in funcs]
        return out

    async def ask_types_after(self, session: Session) -> None:
        """After the server saw the step: which changed names kept their type.  A function
        whose body-only change did change its type sends the server back to the old text for
        a moment, to ask the importers' names that use it before and after (one round trip
        more, only then)."""
        check, self._check = self._check, None
        later, self._later = self._later, None
        if check is not None:
            self._kept(await check.ask_after(session))
        self._settle()
        if later is None or not later.names:
            return
        changed = {rel: names - self.same_type.get(rel, frozenset()) for rel, names in later.names.items()}
        used = check.size if check is not None else 0
        probes = limited(self._importer_probes({r: n for r, n in changed.items() if n}, later.changing),
                         MAX_HOVERS - used)
        # The old state is the whole step undone: every changed Python file back to its old
        # text (a step that created or deleted one cannot be undone in documents: no question).
        python = sorted(rel for rel in later.changing if rel.endswith(PY_SUFFIXES))
        docs = {rel: session.docs[rel].text for rel in python if rel in session.docs and rel in later.old_texts}
        if not probes or len(docs) != len(python):
            return
        again = TypeCheck(probes, frozenset(probes))
        try:
            for rel in docs:
                session.sync(rel, later.old_texts[rel])
            await again.ask_before(session)
        finally:
            for rel, text in docs.items():
                session.sync(rel, text)
        self._kept(await again.ask_after(session))

    def _settle(self) -> None:
        """A class changed inside its methods stands for its changed members (kept, as a name,
        unless a dunder changed)."""
        classes, self._classes = self._classes, {}
        for rel, changes in sorted(classes.items()):
            kept = self.same_type.get(rel, frozenset())
            for name, change in sorted(changes.items()):
                members = settle(change, kept)
                if members is not None:
                    self._kept({rel: frozenset({name})})
                    self.members |= members

    def _kept(self, found: Mapping[str, frozenset[str]]) -> None:
        for rel, names in found.items():
            self.same_type[rel] = self.same_type.get(rel, frozenset()) | names

    def forget_step(self) -> None:
        """The step failed before reaching the server: no type question stands."""
        self._check = None
        self._later = None
        self._classes = {}
        self.members = set()

    def targets(self, text_of: Callable[[str], str | None]) -> frozenset[str] | None:
        """The files to pull after the pending changes (None: all of them)."""
        pending, self.pending = self.pending, {}
        before, self.before = self.before, {}
        same, self.same_type = self.same_type, {}
        members, self.members = frozenset(self.members), set()
        old = {rel: self.interface(rel, before.get(rel)) for rel, kind in pending.items() if kind == "changed"}
        graph = self._update_graph(pending, text_of)
        interfaces = {rel: p.interface for rel, p in self.parsed.items()}
        previous = self.files | {rel for rel, kind in pending.items() if kind == "deleted"}
        targets = affected_files(graph, pending, previous_files=previous, interfaces=interfaces, before=old,
                                 same_type=same, libraries=self._libraries(graph), members=members)
        if targets and (self.cycles or any(p.interface is not None and any("reportImportCycles" in d for d in
                                                                        p.interface.directives)
                                           for p in self.parsed.values())):
            return None  # import-cycle diagnostics depend on files a file does not name
        return targets

    # -- the graph and the library fact ----------------------------------------------------------
    def _update_graph(self, pending: Mapping[str, str], text_of: Callable[[str], str | None]) -> ImportGraph:
        rebuild = self._graph is None
        for rel in sorted(pending):
            if not rel.endswith(PY_SUFFIXES):
                continue
            old = self.parsed.get(rel)
            if rel not in self.files:
                self.parsed.pop(rel, None)
                rebuild = True
                continue
            text = text_of(rel)
            if text is None:
                self.parsed.pop(rel, None)
                rebuild = True
                continue
            new = self.parse(rel, text)
            rebuild = rebuild or old is None or old.imports != new.imports
        for rel in self.files - set(self.parsed):
            text = text_of(rel)
            if text is not None:
                self.parse(rel, text)
            rebuild = True
        if rebuild or self._graph is None:
            imports = {rel: (self.parsed[rel].imports if rel in self.parsed else None) for rel in self.files}
            self._graph = ImportGraph(imports, self.stdlib)
        return self._graph

    def _libraries(self, graph: ImportGraph) -> frozenset[str] | None:
        if self.library_fact is None:
            return None
        external = graph.external_tops()
        new = external - self._examined
        if new:
            self._reaching |= self.library_fact(frozenset(sorted(new)), graph.root_tops(self.roots), self.stdlib)
            self._examined |= new
        return self._reaching & external


__all__ = ["ChangeTracker", "LibraryFact", "Parsed"]
