"""The repository carries its own test data: a plain ``git clone`` + ``make test`` passes on a
machine with nothing beside the clone. Tests and benches used to read the fixtures of the
folder beside the repository and failed at collection elsewhere (``FileNotFoundError``)."""

from __future__ import annotations

import re
from pathlib import Path

from paths import FIXTURES

ROOT = Path(__file__).resolve().parent.parent
# Everything that runs in CI or on a user's machine: code, tests, benches, scripts, the build.
CHECKED = ["src", "tests", "bench", "scripts", "Makefile", ".ci", "pyproject.toml"]
# A path out of the repository to its neighbour folder (NEIGHBOUR): "../NEIGHBOUR",
# "NEIGHBOUR" / "fixtures", and so on. Built from parts so that this file names no such path.
NEIGHBOUR = "sha" + "red"
_NEIGHBOUR = re.compile(
    r"\.\./" + NEIGHBOUR
    + r"|[\"']" + NEIGHBOUR + r"[\"']\s*(?:/|,)\s*[\"']fixtures"
    + r"|" + NEIGHBOUR + r"/fixtures"
)  # fmt: skip


def _files() -> list[Path]:
    out: list[Path] = []
    for name in CHECKED:
        path = ROOT / name
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out += [
                p
                for p in path.rglob("*")
                if p.is_file()
                and "__pycache__" not in p.parts
                and p.suffix not in (".pyc", ".db", ".png", ".gz")
            ]
    return out


def test_nothing_reads_outside_the_repository() -> None:
    files = _files()
    assert len(files) > 100, "the walk found the repository"
    offenders = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in _NEIGHBOUR.finditer(text)]
    assert not offenders, "\n".join(offenders)


def test_the_pattern_finds_what_it_is_for() -> None:
    # The walk above cannot pass by matching nothing: these are the forms it refused.
    for line in (
        f'DATA = ROOT.parent / "{NEIGHBOUR}" / "fixtures"',
        f"open('../{NEIGHBOUR}/fixtures/registry-tags/php.json')",
        f'Path(__file__).parents[2].joinpath("{NEIGHBOUR}", "fixtures")',
    ):
        assert _NEIGHBOUR.search(line), line
    assert not _NEIGHBOUR.search("one client is shared by threads")


def test_the_fixtures_live_in_the_repository_with_their_sources() -> None:
    assert FIXTURES.resolve().is_relative_to(ROOT)
    folders = [p for p in FIXTURES.iterdir() if p.is_dir() and p.name != "LICENSES"]
    assert len(folders) >= 4
    for folder in folders:
        source = folder / "SOURCE.txt"
        assert source.is_file(), f"{folder.name} says where it came from"
        assert len(source.read_text().strip()) > 40
        assert any(p.is_file() and p.name != "SOURCE.txt" for p in folder.rglob("*"))
    licences = sorted((FIXTURES / "LICENSES").iterdir())
    assert licences, "the licences of the copied data travel with it"
    readme = (FIXTURES / "README.md").read_text()
    assert "LICENSES/" in readme
    for licence in licences:  # Apache-2.0.txt, MIT-dependabot-core.txt: README names each
        assert licence.stem.split("-")[0] in readme, f"README says what {licence.name} covers"
