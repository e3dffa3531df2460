"""The pages' HTML: every module a page imports, however deep, is announced in its head
(`<link rel="modulepreload">`) so the browser fetches the whole graph at once instead of
discovering it one import level at a time; and no page links the design system's full
files, which the bundle replaces (services/web/adapters/design_system.py), nor its script
(loaded after the first useful paint by `painted()` in common/layout.js)."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import pytest

from services.web.bootstrap import STATIC_DIR

PAGES = sorted(STATIC_DIR.rglob("index.html"))
IMPORT = re.compile(r"""^\s*(?:import|export)\b[^"';]*?from\s*["']([^"']+)["']""", re.M)
BARE_IMPORT = re.compile(r"""^\s*import\s*["']([^"']+)["']""", re.M)


def module_graph(entry: str) -> set[str]:
    """The URLs the module at `entry` (a URL under the static root) imports, transitively."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        url = todo.pop()
        text = (STATIC_DIR / url.lstrip("/")).read_text(encoding="utf-8")
        for spec in IMPORT.findall(text) + BARE_IMPORT.findall(text):
            target = posixpath.normpath(posixpath.join(posixpath.dirname(url), spec))
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_scan_finds_the_pages() -> None:
    assert {p.parent.name for p in PAGES} >= {"cellule", "projets", "terrain", "financeur"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.parent.relative_to(STATIC_DIR)))
def test_every_module_a_page_imports_is_preloaded(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    entries = [
        s
        for s in re.findall(r'<script type="module" src="([^"]+)"', html)
        if not s.startswith("/dsfr/")
    ]
    assert entries, "a page without its module"
    preloaded = set(re.findall(r'<link rel="modulepreload" href="([^"]+)"', html))
    graph = set().union(*(module_graph(e) for e in entries))
    assert not graph - preloaded, f"imported, not preloaded: {sorted(graph - preloaded)}"
    assert not preloaded - graph, f"preloaded, never imported: {sorted(preloaded - graph)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.parent.relative_to(STATIC_DIR)))
def test_pages_link_the_bundle_not_the_full_design_system(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert '<link rel="stylesheet" href="/dsfr/rebond.min.css">' in html
    # its script is loaded by the page once painted (common/layout.js), never from here
    assert "rebond.module.min.js" not in html
    for full in ("/dsfr/dsfr.min.css", "/dsfr/utility/icons/icons.min.css", "dsfr.module.min.js"):
        assert f'"{full}"' not in html


def test_the_design_systems_script_is_loaded_after_the_paint_by_the_common_layout() -> None:
    layout = (STATIC_DIR / "common" / "layout.js").read_text(encoding="utf-8")
    assert '"/dsfr/rebond.module.min.js"' in layout
    pages = [p for p in STATIC_DIR.rglob("app.js")]
    assert pages and all("painted(" in p.read_text(encoding="utf-8") for p in pages), [
        str(p) for p in pages if "painted(" not in p.read_text(encoding="utf-8")
    ]
