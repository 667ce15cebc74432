"""Every Python code block of the docs is executed by the test suite (sybil), page by page, top to bottom.

Blocks of one page share a namespace; ``<!-- skip: next "why" -->`` before a block skips it (reported as
skipped, with the reason); ``<!-- clear-namespace -->`` starts afresh. Each page runs in a temporary working
directory of its own (a snippet may write records there), with one bench cache for the whole session (the
bundled dataset is decoded once).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sybil import Sybil
from sybil.parsers.markdown import ClearNamespaceParser, PythonCodeBlockParser, SkipParser


@pytest.fixture(scope="session")
def docs_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs-cache")


@pytest.fixture(scope="module")
def docs_dir(tmp_path_factory: pytest.TempPathFactory, docs_cache: Path):
    """A fresh working directory for one page, and the session's bench cache."""
    where = tmp_path_factory.mktemp("docs-page")
    before, cache = os.getcwd(), os.environ.get("BENCH_CACHE_DIR")
    os.chdir(where)
    os.environ["BENCH_CACHE_DIR"] = str(docs_cache)
    yield where
    os.chdir(before)
    if cache is None:
        os.environ.pop("BENCH_CACHE_DIR", None)
    else:
        os.environ["BENCH_CACHE_DIR"] = cache


pytest_collect_file = Sybil(
    parsers=[PythonCodeBlockParser(), SkipParser(), ClearNamespaceParser()],
    patterns=["*.md"],
    fixtures=["docs_dir"],
).pytest()
