"""docs/architecture.md names every module that exists and states the import rules the tests enforce.

Why this exists: the map drifted (15 modules missing, ``trainer.checkpoint`` called a shell
while tests/test_import_rules.py checks it as pure), because nothing noticed. Issue 9 asks that the
doc describe every module in the same change that adds it; this test makes a new module without a
line in the map fail here, next to the code, instead of in a later review.

Checks are on names only (cheap, no imports of the project):
- every ``.py`` file under race_server/, trainer/, car_client/ is named in the doc, either by its
  path or, in a section whose heading names a folder above it, by its path below that folder
  (``__init__.py`` is exempt: the package itself must be named instead);
- the doc's pure-module block equals PURE_PACKAGES + PURE_MODULES of tests/test_import_rules.py;
- every per-area doc in docs/ is pointed to.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_import_rules import PURE_MODULES, PURE_PACKAGES

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "architecture.md"
ROOTS = ("race_server", "trainer", "car_client")
# The block the doc keeps equal to the import-rule test: a fenced block right after this marker.
PURE_MARKER = "<!-- pure modules: the same list as tests/test_import_rules.py -->"


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) for every markdown heading, so a bare file name counts only under its folder."""
    parts = re.split(r"^(#{1,6} .*)$", text, flags=re.MULTILINE)
    return [(parts[i], parts[i + 1]) for i in range(1, len(parts) - 1, 2)]


def named(module: Path, text: str, heads: list[tuple[str, str]]) -> bool:
    """Its full path anywhere, or its path below a folder that a section's heading names."""
    if module.as_posix() in text:
        return True
    parts = module.parts
    for cut in range(1, len(parts)):
        folder, rest = "/".join(parts[:cut]), "/".join(parts[cut:])
        if any(f"`{folder}/`" in head and f"`{rest}`" in body for head, body in heads):
            return True
    return False


def test_every_module_and_package_is_named() -> None:
    text = DOC.read_text()
    heads = sections(text)
    missing: list[str] = []
    for root in ROOTS:
        for module in sorted((REPO / root).rglob("*.py")):
            relative = module.relative_to(REPO)
            if module.name == "__init__.py":
                if f"{relative.parent.as_posix()}/" not in text:
                    missing.append(f"{relative.parent.as_posix()}/ (package)")
            elif not named(relative, text, heads):
                missing.append(relative.as_posix())
    assert missing == [], f"docs/architecture.md does not name: {missing}"


def test_the_pure_list_matches_the_import_rule_test() -> None:
    text = DOC.read_text()
    assert PURE_MARKER in text, "the pure-module block lost its marker"
    block = text.split(PURE_MARKER, 1)[1].split("```", 2)[1]
    in_doc = set(re.findall(r"\b(?:race_server|trainer)(?:\.\w+)+", block))
    in_test = set(PURE_PACKAGES) | set(PURE_MODULES)
    assert in_doc - in_test == set(), "in the doc's pure block but not checked by the test"
    assert in_test - in_doc == set(), "checked as pure by the test but missing from the doc's block"


def test_every_area_doc_is_pointed_to() -> None:
    text = DOC.read_text()
    others = sorted(p.name for p in (REPO / "docs").glob("*.md") if p.name != DOC.name)
    assert [name for name in others if f"docs/{name}" not in text] == []
