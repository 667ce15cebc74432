"""Every Python code block of the docs is executed by the test suite (sybil), file by file, top to bottom.

Blocks of one page share a namespace; ``<!-- skip: next "why" -->`` before a block skips it (reported as
skipped, with the reason); ``<!-- clear-namespace -->`` starts afresh. Each page runs in its own temporary
working directory, so a snippet may write files (records, caches) without touching the checkout.
"""

from __future__ import annotations

import os

import pytest
from sybil import Sybil
from sybil.parsers.markdown import ClearNamespaceParser, PythonCodeBlockParser, SkipParser


@pytest.fixture
def docs_dir(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A fresh working directory (and bench cache) for one page."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def setup(namespace: dict) -> None:
    namespace["os"] = os


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser(), ClearNamespaceParser()],
    patterns=["*.md"],
    fixtures=["docs_dir"],
    setup=setup,
).pytest()
