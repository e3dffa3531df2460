"""The part of the French State's design system (DSFR) the pages use, as one stylesheet and
one script, built once at start-up from the npm package the lock file pins and served
precompressed.

Why not the package's full `dsfr.min.css` (728 KB) and `utility/icons/icons.min.css`
(356 KB, every one of its 1,044 icons): on this 2-core machine the browser spends more
time parsing and matching those rules than the pages spend on their data, and the server
spent as long gzipping them on every cold load. The package also ships each component
alone (`component/<name>/<name>.main.min.css`, `<name>.module.min.js`, documented in each
component's README with its dependencies): the bundle takes the core, the components
the pages' markup names, and the icons they name — and `tests/unit/web/
test_design_system.py` fails when a page starts using a class or an icon left out here.

Print styles stay in the package's `dsfr.print.min.css`, linked with `media="print"`
(the browser fetches it without waiting on it). Dark mode is not offered (the pages set
`data-fr-scheme="light"`), so the scheme's styles are not bundled; its script is, since
the header's display settings read it."""

from __future__ import annotations

import gzip
import hashlib
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

#: the components whose classes appear in the pages (`fr-btn` → button, …), in the
#: order of the package's dependency trees (each component's README): a component
#: after the ones it builds on
COMPONENTS: tuple[str, ...] = (
    "link",
    "button",
    "logo",
    "modal",
    "navigation",
    "search",
    "translate",
    "header",
    "footer",
    "skiplink",
    "form",
    "input",
    "select",
    "checkbox",
    "radio",
    "segmented",
    "table",
    "badge",
    "tag",
    "alert",
    "notice",
    "accordion",
)

#: the `fr-icon-*` classes the pages set (two are built from a direction:
#: `fr-icon-arrow-${left|right}-s-line` in the field app's week navigation)
ICONS: frozenset[str] = frozenset(
    {
        "account-line",
        "add-line",
        "arrow-left-line",
        "arrow-left-s-line",
        "arrow-right-s-line",
        "download-line",
        "logout-box-r-line",
        "refresh-line",
    }
)

STYLESHEET = "rebond.min.css"
SCRIPT = "rebond.module.min.js"

_URL = re.compile(r"""url\((?:"([^"]*)"|'([^']*)'|([^'")]*))\)""")
_ICON = re.compile(r"fr-icon-([a-z0-9][a-z0-9-]*)")
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)
_LICENCE = re.compile(r"/\*!.*?\*/", re.DOTALL)


class DesignSystemMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Asset:
    """One built file: its bytes, gzipped once, and a validator for revalidation."""

    body: bytes
    gzipped: bytes
    media_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Asset:
        digest = hashlib.sha256(body).hexdigest()[:20]
        return cls(body, gzip.compress(body, compresslevel=9, mtime=0), media_type, f'"{digest}"')


def build(dsfr_dir: Path) -> dict[str, Asset]:
    """The stylesheet and the script, by file name (served under `/dsfr/`)."""
    return {
        STYLESHEET: Asset.of(stylesheet(dsfr_dir).encode(), "text/css; charset=utf-8"),
        SCRIPT: Asset.of(script(dsfr_dir).encode(), "text/javascript; charset=utf-8"),
    }


def stylesheet(dsfr_dir: Path) -> str:
    parts = [_licence(dsfr_dir), _css(dsfr_dir, "core/core.main.min.css")]
    parts += [_css(dsfr_dir, f"component/{c}/{c}.main.min.css") for c in COMPONENTS]
    icons = _css(dsfr_dir, "utility/icons/icons.main.min.css")
    parts.append(only_icons(icons, ICONS))
    return "\n".join(parts) + "\n"


def script(dsfr_dir: Path) -> str:
    """The core, the scheme and the components that have a script, each in its own block:
    every file of the package declares the same top-level names (`const e=window.dsfr`),
    which one module scope would refuse twice."""
    files = ["core/core.module.min.js", "scheme/scheme.module.min.js"]
    files += [
        f"component/{c}/{c}.module.min.js"
        for c in COMPONENTS
        if (dsfr_dir / f"component/{c}/{c}.module.min.js").is_file()
    ]
    blocks = []
    for name in files:
        text = _SOURCE_MAP.sub("", _LICENCE.sub("", _read(dsfr_dir, name))).strip()
        blocks.append(f"// {name}\n{{\n{text}\n}}")
    return _licence(dsfr_dir) + "\n" + "\n".join(blocks) + "\n"


def only_icons(css: str, keep: frozenset[str]) -> str:
    """The icon stylesheet without the rules of icons the pages never name: a selector
    that names an icon outside `keep` is dropped, a rule left with no selector too; the
    shared rules (`[class*=" fr-icon-"]:before`, …) name none and stay."""
    out: list[str] = []
    for prelude, body in _rules(css):
        if body is None:  # a statement (@charset, @import…)
            out.append(prelude + ";")
        elif prelude.startswith("@"):
            inner = only_icons(body, keep) if "{" in body else body
            if inner.strip():
                out.append(f"{prelude}{{{inner}}}")
        else:
            kept = [s for s in _split_selectors(prelude) if _names_only(s, keep)]
            if kept:
                out.append(f"{','.join(kept)}{{{body}}}")
    return "".join(out)


def _names_only(selector: str, keep: frozenset[str]) -> bool:
    return all(name in keep for name in _ICON.findall(selector))


def _rules(css: str) -> list[tuple[str, str | None]]:
    """Top-level rules of a stylesheet: (prelude, body) with the body's braces removed,
    or (statement, None). Strings and comments are stepped over, nested blocks kept."""
    rules: list[tuple[str, str | None]] = []
    i, start, depth, n = 0, 0, 0, len(css)
    body_start = 0
    while i < n:
        ch = css[i]
        if ch in "\"'":
            end = css.find(ch, i + 1)
            while end != -1 and css[end - 1] == "\\":
                end = css.find(ch, end + 1)
            i = n if end == -1 else end + 1
            continue
        if css.startswith("/*", i):
            end = css.find("*/", i + 2)
            if depth == 0:
                start = n if end == -1 else end + 2
            i = n if end == -1 else end + 2
            continue
        if ch == "{":
            if depth == 0:
                body_start = i + 1
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                rules.append((css[start : body_start - 1].strip(), css[body_start:i]))
                start = i + 1
        elif ch == ";" and depth == 0:
            statement = css[start:i].strip()
            if statement:
                rules.append((statement, None))
            start = i + 1
        i += 1
    return rules


def _split_selectors(prelude: str) -> list[str]:
    """Split a selector list at its top-level commas (not those inside `:is(…)`)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(prelude):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(prelude[start:i])
            start = i + 1
    parts.append(prelude[start:])
    return [p for p in (p.strip() for p in parts) if p]


def _css(dsfr_dir: Path, name: str) -> str:
    """A file of the package with its relative `url(…)`s rewritten for `/dsfr/` (where
    the bundle is served) and its licence comment dropped (the bundle carries it once)."""
    folder = posixpath.dirname(name)

    def rebase(match: re.Match[str]) -> str:
        url = next(g for g in match.groups() if g is not None).strip()
        if not url or url.startswith(("data:", "/", "#", "http:", "https:")):
            return match.group(0)
        return f"url({posixpath.normpath(posixpath.join(folder, url))})"

    return _URL.sub(rebase, _LICENCE.sub("", _read(dsfr_dir, name))).strip()


def _licence(dsfr_dir: Path) -> str:
    found = _LICENCE.search(_read(dsfr_dir, "core/core.main.min.css"))
    licence = found.group(0) if found else ""
    return f"{licence}\n/* Rebond: the DSFR parts the pages use ({__name__}) */"


def _read(dsfr_dir: Path, name: str) -> str:
    path = dsfr_dir / name
    if not path.is_file():
        raise DesignSystemMissing(
            f"the design system file {path} is missing: run `make setup` (npm ci)"
        )
    return path.read_text(encoding="utf-8")
