"""The design system's bundle (services/web/adapters/design_system.py): it styles every
DSFR class and icon the pages use, its files exist, its script parses, and it is served
gzipped once with a validator."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from services.web.adapters import design_system
from services.web.bootstrap import DSFR_DIR, STATIC_DIR, bootstrap, create_app
from services.web.settings import WebSettings

# Never skipped in CI, where `make setup` installs the package and node.
pytestmark = pytest.mark.skipif(
    not DSFR_DIR.is_dir() and not os.environ.get("CI"),
    reason="the design system is not installed: run `make setup`",
)

#: a class attribute's words, in HTML (class="…") and in the pages' DOM builder ({class: …})
CLASS_VALUE = re.compile(r"""class(?:Name)?["']?\s*[:=]\s*[`"']([^`"']*)[`"']""")
#: classes built from a value in the pages' scripts, and every value they take
TEMPLATES = {"fr-icon-arrow-${icon}-s-line": ("left", "right")}


def page_classes() -> set[str]:
    """Every `fr-` class the pages' markup and scripts set."""
    found: set[str] = set()
    for path in STATIC_DIR.rglob("*"):
        if path.suffix not in (".html", ".js"):
            continue
        text = path.read_text(encoding="utf-8")
        for template, values in TEMPLATES.items():
            if template in text:
                found |= {template.replace("${icon}", v) for v in values}
        for value in CLASS_VALUE.findall(text):
            for word in value.split():
                if word.startswith("fr-") and "$" not in word and "{" not in word:
                    found.add(word)
        # a class given by a ternary or a helper's argument: "fr-…" string literals
        for literal in re.findall(r"""["'`](fr-[a-z0-9-]+(?:-{2}[a-z0-9-]+)?)["'`]""", text):
            found.add(literal)
    return found


def styled(css: str, klass: str) -> bool:
    return re.search(rf"\.{re.escape(klass)}(?![a-zA-Z0-9_-])", css) is not None


def test_every_class_the_pages_use_that_dsfr_styles_is_in_the_bundle() -> None:
    # the screen styles (the print ones stay in dsfr.print.min.css, linked media="print")
    full = (DSFR_DIR / "dsfr.main.min.css").read_text(encoding="utf-8")
    full += (DSFR_DIR / "utility/icons/icons.main.min.css").read_text(encoding="utf-8")
    bundle = design_system.stylesheet(DSFR_DIR)
    used = page_classes()
    assert len(used) > 40, sorted(used)  # the scan finds the pages' classes
    missing = sorted(k for k in used if styled(full, k) and not styled(bundle, k))
    assert not missing, (
        f"classes the pages use, styled by DSFR, left out of the bundle: {missing}"
        " (add their component to COMPONENTS or their icon to ICONS)"
    )
    # and the bundle is the point: much smaller than what it replaces
    assert len(bundle) < 0.6 * len(full)


def test_the_bundle_keeps_only_the_icons_the_pages_name() -> None:
    bundle = design_system.stylesheet(DSFR_DIR)
    icons = set(re.findall(r"\.fr-icon-([a-z0-9][a-z0-9-]*)", bundle))
    core_icons = set(
        re.findall(
            r"\.fr-icon-([a-z0-9][a-z0-9-]*)",
            (DSFR_DIR / "core/core.main.min.css").read_text(encoding="utf-8"),
        )
    )
    assert icons >= design_system.ICONS
    assert icons - core_icons <= design_system.ICONS


def test_every_file_the_stylesheet_names_is_served() -> None:
    css = design_system.stylesheet(DSFR_DIR)
    urls = {u.strip("\"'") for u in re.findall(r"url\(([^)]*)\)", css)}
    files = {u for u in urls if not u.startswith("data:")}
    assert any(u.startswith("fonts/Marianne") for u in files)
    assert any(u.startswith("icons/") for u in files)
    assert not [u for u in files if not (DSFR_DIR / u).is_file()]


def test_only_icons_drops_the_selectors_of_other_icons_and_keeps_the_shared_rules() -> None:
    css = (
        '[class*=" fr-icon-"]:before,[class^=fr-icon-]:before{content:""}'
        ".fr-icon-add-line:before,.fr-icon-zoom-in-line:before{mask:url(a.svg)}"
        ".fr-icon-zoom-in-line:after{mask:url(b.svg)}"
        ".fr-icon--sm:before{width:1rem}"
        "@media (forced-colors:active){.fr-icon-zoom-in-line:before{color:red}"
        ".fr-icon-add-line:before{color:blue}}"
        "@media print{.fr-icon-zoom-in-line{display:none}}"
    )
    kept = design_system.only_icons(css, frozenset({"add-line"}))
    assert kept == (
        '[class*=" fr-icon-"]:before,[class^=fr-icon-]:before{content:""}'
        ".fr-icon-add-line:before{mask:url(a.svg)}"
        ".fr-icon--sm:before{width:1rem}"
        "@media (forced-colors:active){.fr-icon-add-line:before{color:blue}}"
    )


def test_the_script_bundle_parses_as_one_module(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None and not os.environ.get("CI"):
        pytest.skip("node is not installed here (make setup installs it)")
    assert node is not None, "node is not installed (make setup installs it)"
    path = tmp_path / "bundle.mjs"
    path.write_text(design_system.script(DSFR_DIR), encoding="utf-8")
    checked = subprocess.run([node, "--check", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


async def test_the_bundle_is_served_gzipped_once_with_a_validator() -> None:
    settings = WebSettings(environment="test", jwt_secret="x" * 40)
    app = create_app(bootstrap(settings))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pages.test") as client:
        zipped = await client.get("/dsfr/rebond.min.css", headers={"Accept-Encoding": "gzip"})
        assert zipped.status_code == 200
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.headers["content-type"].startswith("text/css")
        assert "max-age" in zipped.headers["cache-control"]
        assert ".fr-btn" in zipped.text  # httpx undid the gzip
        plain = await client.get("/dsfr/rebond.min.css", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.content == gzip.decompress(
            design_system.build(DSFR_DIR)[design_system.STYLESHEET].gzipped
        )
        again = await client.get(
            "/dsfr/rebond.min.css", headers={"If-None-Match": zipped.headers["etag"]}
        )
        assert again.status_code == 304
        script = await client.get("/dsfr/rebond.module.min.js")
        assert script.headers["content-type"].startswith("text/javascript")
        # the rest of the package is still there, as files
        font = await client.get("/dsfr/fonts/Marianne-Regular.woff2")
        assert font.status_code == 200
        assert (await client.get("/dsfr/dsfr.print.min.css")).status_code == 200
