"""Jinja's compiled templates kept on disk between dbt processes.

dbt renders every macro and every node's SQL from Jinja source, and each dbt process compiles
each template it uses anew: lexing, parsing, generating Python and compiling that, about 1.7 s
of a build's 9 s of interpreter time on 2 cores (docs/scaling.md), though the sources hardly
ever change from one build to the next. Jinja keeps compiled templates between processes for
templates it loads by name (its bytecode cache); dbt builds its templates from strings, which
that cache does not cover. This does the same for every template: ``Environment.compile`` is
wrapped so that its result, a Python code object, is stored (``marshal``) under a key of
everything the compiled code depends on, and read back instead of compiling again.

The key: the source, the template's name and file name, ``defer_init``; the environment's class
and code generator, its extensions, syntax and options, its ``finalize`` and ``autoescape``; its
filters and tests, each by name, how it is called (the code generated for a filter depends on
whether it takes the context) and what it is (module, name and, for a Python function, a hash of
its code: Jinja calls a filter with constant arguments while compiling and keeps the result);
the versions of Python, Jinja and dbt's packages (dbt's parser and extensions decide a parse).
A template that does not compile raises as before and nothing is stored. Entries are files
named by the key's SHA-256, written atomically, in a folder only its owner can write to (a code
object read from it is run).
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import sys
import threading
from pathlib import Path
from types import CodeType
from typing import Any, cast

#: Environment attributes the generated code depends on (syntax and code generation options).
ENVIRONMENT_OPTIONS = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "is_async",
)


class CompileCache:
    """Compiled templates by key: in this process's memory, then on disk in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.memory: dict[str, CodeType] = {}
        self.hits = 0
        self.misses = 0
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if directory.stat().st_uid != os.getuid() or directory.stat().st_mode & 0o022:
            raise PermissionError(
                f"{directory} is writable by other users or not owned by this one: a compiled template "
                "read from it would run their code. Make it private (chmod 700) or choose another folder."
            )

    def get(self, key: str) -> CodeType | None:
        if (code := self.memory.get(key)) is not None:
            return code
        try:
            data = (self.directory / key).read_bytes()
        except FileNotFoundError:
            return None
        try:
            code = marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            return None  # a torn or foreign file: compiled again and written anew
        if not isinstance(code, CodeType):
            return None
        self.memory[key] = code
        return code

    def put(self, key: str, code: CodeType) -> None:
        """Keep ``code`` under ``key``. Writing is best effort: a disk that refuses (full, read
        only) costs the next process a compile, never this one its template."""
        self.memory[key] = code
        # dbt's threads may compile the same template at once: each writes a file of its own
        temporary = self.directory / f".{key}.{os.getpid()}.{threading.get_ident()}"
        try:
            temporary.write_bytes(marshal.dumps(code))
            os.replace(temporary, self.directory / key)
        except OSError:
            temporary.unlink(missing_ok=True)


#: The packages whose code decides how a template compiles: Jinja's compiler and optimizer, and
#: dbt's parser, extensions and filters (an upgrade of any of them starts a new set of entries).
PACKAGES = ("jinja2", "markupsafe", "dbt-core", "dbt-common", "dbt-adapters", "dbt-postgres")


@functools.cache
def package_versions() -> tuple[tuple[str, str], ...]:
    from importlib import metadata

    versions = []
    for package in PACKAGES:
        try:
            versions.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            versions.append((package, "-"))
    return tuple(versions)


def identity(function: Any) -> str:
    """What a callable is, across processes: its module and name, and for a Python function the
    hash of its code and constants (two lambdas of one module share a name, not a body)."""
    if function is None:
        return "None"
    module = getattr(function, "__module__", None) or type(function).__module__
    name = getattr(function, "__qualname__", None) or type(function).__qualname__
    code = getattr(function, "__code__", None)
    if code is None:
        return f"{module}.{name}"
    return f"{module}.{name}#{code_digest(code)[:16]}"


def code_digest(code: CodeType) -> str:
    """A hash of a code object's bytecode, names and constants, the same in every process."""
    digest = hashlib.sha256(code.co_code)
    digest.update(repr(code.co_names).encode())
    digest.update(stable_repr(code.co_consts).encode())
    return digest.hexdigest()


def stable_repr(constant: Any) -> str:
    """A constant's ``repr`` as every process writes it: a nested function's code object by its
    digest (its ``repr`` holds its address), a frozenset's items in order (a set of strings
    iterates in an order that differs from process to process)."""
    if isinstance(constant, CodeType):
        return f"code:{code_digest(constant)}"
    if isinstance(constant, frozenset):
        return "frozenset(" + ", ".join(sorted(stable_repr(item) for item in constant)) + ")"
    if isinstance(constant, tuple):
        return "(" + ", ".join(stable_repr(item) for item in constant) + ")"
    return repr(constant)


#: Fingerprints of filter and test tables already seen in this process, by their callables' ids,
#: each with the callables themselves: kept alive here, their ids cannot name another object.
_fingerprints: dict[tuple[tuple[str, int], ...], tuple[str, tuple[Any, ...]]] = {}


def callables_fingerprint(functions: dict[str, Any]) -> str:
    """Each filter's or test's name, what it is passed (context, environment, nothing) and what
    it is: Jinja calls a filter or test with constant arguments while compiling (constant
    folding), so the code holds its result, not only a call to it."""
    from jinja2.utils import _PassArg

    seen = tuple((name, id(function)) for name, function in functions.items())
    if (known := _fingerprints.get(seen)) is None:
        fingerprint = sorted(
            (name, str(_PassArg.from_obj(function)), identity(function)) for name, function in functions.items()
        )
        known = _fingerprints[seen] = (repr(fingerprint), tuple(functions.values()))
    return known[0]


def compile_key(environment: Any, source: str, name: str | None, filename: str | None, defer_init: bool) -> str:
    autoescape = environment.autoescape
    parts = [
        sys.version,
        package_versions(),
        f"{type(environment).__module__}.{type(environment).__qualname__}",
        f"{environment.code_generator_class.__module__}.{environment.code_generator_class.__qualname__}",
        sorted(environment.extensions),
        [getattr(environment, option) for option in ENVIRONMENT_OPTIONS],
        autoescape if isinstance(autoescape, bool) else identity(autoescape),
        identity(environment.finalize),
        callables_fingerprint(environment.filters),
        callables_fingerprint(environment.tests),
        name,
        filename,
        defer_init,
        source,
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def macro_debugging() -> bool:
    """Whether dbt's ``--macro-debugging`` is on (it sets this module variable of dbt's)."""
    module = sys.modules.get("dbt_common.clients.jinja")
    return bool(getattr(module, "MACRO_DEBUGGING", False))


def install(directory: Path) -> CompileCache:
    """Wrap ``jinja2.Environment.compile`` in this process with a cache in ``directory`` (once:
    a second call returns the cache installed first)."""
    import jinja2

    original: Any = jinja2.Environment.compile
    if (installed := getattr(original, "pulse_cache", None)) is not None:
        return cast(CompileCache, installed)  # in a child of the warm dbt server, for one
    cache = CompileCache(directory)

    def compile(
        self: Any,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        # raw asks for the generated Python source; a parsed template has no text to key on;
        # dbt's macro debugging puts each compiled source in linecache as it compiles it
        if raw or not isinstance(source, str) or macro_debugging():
            return original(self, source, name, filename, raw, defer_init)
        key = compile_key(self, source, name, filename, defer_init)
        code = cache.get(key)
        if code is None:
            cache.misses += 1
            code = original(self, source, name, filename, raw, defer_init)
            cache.put(key, code)
        else:
            cache.hits += 1
        return code

    compile.pulse_cache = cache  # type: ignore[attr-defined]
    compile.pulse_original = original  # type: ignore[attr-defined]
    jinja2.Environment.compile = compile  # type: ignore[method-assign]
    return cache


def uninstall() -> None:
    """Give ``jinja2.Environment.compile`` back its own compile (if ``install`` wrapped it)."""
    import jinja2

    original = getattr(jinja2.Environment.compile, "pulse_original", None)
    if original is not None:
        jinja2.Environment.compile = original  # type: ignore[method-assign]
