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
and code generator, its extensions, syntax and options; the names of its filters and tests and
how each is called (the code generated for a filter depends on whether it takes the context),
and the versions of Python and Jinja. A template that does not compile raises as before and
nothing is stored. Entries are files named by the key's SHA-256, written atomically, in a folder
only its owner can write to (a code object read from it is run).
"""

from __future__ import annotations

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


def callables_fingerprint(functions: dict[str, Any]) -> list[tuple[str, str]]:
    """Each filter's or test's name and what it is passed (context, environment, nothing)."""
    from jinja2.utils import _PassArg

    return sorted((name, str(_PassArg.from_obj(function))) for name, function in functions.items())


def compile_key(environment: Any, source: str, name: str | None, filename: str | None, defer_init: bool) -> str:
    import jinja2

    autoescape = environment.autoescape
    parts = [
        sys.version,
        jinja2.__version__,
        f"{type(environment).__module__}.{type(environment).__qualname__}",
        f"{environment.code_generator_class.__module__}.{environment.code_generator_class.__qualname__}",
        sorted(environment.extensions),
        [getattr(environment, option) for option in ENVIRONMENT_OPTIONS],
        autoescape if isinstance(autoescape, bool) else repr(autoescape),
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
