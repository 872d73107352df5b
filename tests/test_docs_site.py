"""The documentation site builds strictly (every page in the nav exists, every relative link and image between pages
resolves, every ``:::`` API reference imports), and every relative link or image in README.md names a file of the
repository."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HAS_MKDOCS = all(importlib.util.find_spec(name) for name in ("mkdocs", "material", "mkdocstrings_handlers"))
needs_mkdocs = pytest.mark.skipif(not HAS_MKDOCS, reason="the docs extra is not installed (pip install -e .[docs])")

# [text](target) and ![alt](target "title"); the target ends at whitespace or the closing parenthesis
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", flags=re.S | re.M)


def broken_relative_links(markdown_file: Path) -> list[str]:
    """The relative link and image targets of a Markdown file (outside code blocks and inline code) that name no
    existing file or folder, resolved from the file's folder; URLs and in-page anchors are not checked."""
    text = FENCE.sub("", markdown_file.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)
    broken = []
    for target in MARKDOWN_LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I) or target.startswith("#"):
            continue
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not (markdown_file.parent / path).exists():
            broken.append(target)
    return broken


def mkdocs_build(config: Path, site_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site_dir)], cwd=config.parent, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300)


def test_every_relative_link_and_image_in_the_readme_exists() -> None:
    assert broken_relative_links(ROOT / "README.md") == []


def test_the_link_check_finds_a_missing_target_and_ignores_urls_anchors_and_code(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("x")
    (tmp_path / "README.md").write_text(
        "[ok](docs/page.md#part) ![gone](docs/missing.png) [web](https://example.org/x.md) [anchor](#top)\n"
        "`[inline](nowhere.md)`\n```text\n[fenced](nowhere.md)\n```\n[also gone](docs/page.md/extra \"title\")\n")
    assert broken_relative_links(tmp_path / "README.md") == ["docs/missing.png", "docs/page.md/extra"]


@needs_mkdocs
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    result = mkdocs_build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stderr[-3000:]
    # the API reference is generated from the docstrings, not an empty page
    api = (tmp_path / "site" / "api" / "base" / "index.html").read_text(encoding="utf-8")
    for member in ("AdversarialModule", "AdversarialModule.make_fakes", "AdversarialModule.discriminator_loss"):
        assert f'id="gan_lightning.models.base.{member}"' in api


@needs_mkdocs
def test_a_broken_link_between_pages_fails_the_strict_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config["docs_dir"] = str(docs)
    config["plugins"] = ["search"]  # the API pages' ::: blocks then stay plain text: this build checks links only
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    assert mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site").returncode == 0
    with (docs / "reliability.md").open("a") as page:
        page.write("\nSee [the missing page](no-such-page.md).\n")
    result = mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert result.returncode != 0 and "no-such-page.md" in result.stderr
