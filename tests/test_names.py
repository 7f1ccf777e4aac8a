"""Unknown names are errors or warnings, never a silent "nothing found"; the workload forms;
the README's first commands after `make demo` (issue 12, "The first hour")."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from clirun import assert_one_error, invoke
from imagetrail import settings as settings_mod
from imagetrail.ledger import Ledger
from imagetrail.model import matches_workload, parse_workload
from imagetrail.names import check_names, regex_branches
from imagetrail.service.demo import build_demo_ledger
from imagetrail.web import create_app

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("names") / "demo.db"
    ledger, _ = build_demo_ledger(path, signals=False)
    ledger.close()
    return path


@pytest.fixture(autouse=True)
def _no_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def run(demo_db: Path, *args: str) -> object:
    return invoke(list(args), {"IMAGETRAIL_LEDGER": str(demo_db)})


# -- the defects of the new-user trial -----------------------------------------------------------
def test_a_typo_cluster_is_an_error_naming_the_closest(demo_db: Path) -> None:
    r = invoke(["versions", "--cluster", "prod-eux"], {"IMAGETRAIL_LEDGER": str(demo_db)})
    assert_one_error(r, 2, "no cluster 'prod-eux'", "did you mean prod-eu")


def test_a_typo_namespace_branch_warns_and_the_rest_answers(
    demo_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="imagetrail"):
        r = invoke(
            ["versions", "-n", "shop|paymnts", "-f", "json"], {"IMAGETRAIL_LEDGER": str(demo_db)}
        )
    rows = r.json()
    assert isinstance(rows, list)
    assert rows
    namespaces = {w.split("/")[1] for row in rows for w in row["workloads"]}
    assert namespaces == {"shop"}  # shop answers; no payments row slipped in
    warned = caplog.text + r.err  # stderr through logging (the CLI's handler, or pytest's)
    assert "'paymnts'" in warned
    assert "did you mean payments?" in warned


def test_a_typo_exact_namespace_is_an_error(demo_db: Path) -> None:
    r = invoke(["changes", "-n", "paymnts"], {"IMAGETRAIL_LEDGER": str(demo_db)})
    assert_one_error(r, 2, "no namespace 'paymnts'", "did you mean payments?")


def test_a_typo_workload_is_an_error_naming_the_closest(demo_db: Path) -> None:
    r = invoke(["changes", "-w", "cartt"], {"IMAGETRAIL_LEDGER": str(demo_db)})
    assert_one_error(r, 2, "no workload matches 'cartt'", "did you mean cart?")


def test_history_with_a_typo_cluster_blames_the_cluster(demo_db: Path) -> None:
    r = invoke(
        ["history", "shop/cart", "--cluster", "prod-eux"], {"IMAGETRAIL_LEDGER": str(demo_db)}
    )
    line = assert_one_error(r, 2, "no cluster 'prod-eux'", "did you mean prod-eu")
    assert "workload" not in line


@pytest.mark.parametrize(
    "form",
    [
        "prod-eu/shop/cart",  # cluster/namespace/name: what the ambiguity hint offers
        "prod-eu/shop/Deployment/cart",
        "prod-eu/shop/deployment/cart",
    ],
)
def test_history_of_cluster_namespace_name(demo_db: Path, form: str) -> None:
    r = invoke(["history", form, "-f", "json"], {"IMAGETRAIL_LEDGER": str(demo_db)})
    assert r.code == 0, r.err
    assert r.json()


def test_the_ambiguity_hint_offers_forms_that_work(demo_db: Path) -> None:
    r = invoke(["history", "shop/cart"], {"IMAGETRAIL_LEDGER": str(demo_db)})
    assert_one_error(r, 2, "'shop/cart' matches 3 workloads")
    hint = r.err.strip().split("\n")[1]
    offered = re.findall(r"[\w.-]+/[\w.-]+/[\w.-]+", hint)
    assert offered == ["prod-eu/shop/cart", "prod-us/shop/cart", "staging/shop/cart"]
    for form in offered:
        again = invoke(["history", form, "-f", "json"], {"IMAGETRAIL_LEDGER": str(demo_db)})
        assert again.code == 0, again.err


def test_a_known_name_with_nothing_in_range_is_still_nothing_found(demo_db: Path) -> None:
    # prod-eu/shop/cart is known; years ago it ran nothing: "nothing found", exit 0.
    args = ["changes", "--cluster", "prod-eu", "-n", "shop", "-w", "cart"]
    r = invoke([*args, "--from", "2001-01-01T00:00:00Z", "--to", "2001-01-02T00:00:00Z"],
               {"IMAGETRAIL_LEDGER": str(demo_db)})  # fmt: skip
    assert r.code == 0, r.err
    assert "nothing found" in r.out
    assert "error" not in r.err


def test_live_queries_are_not_checked_against_the_ledger() -> None:
    assert check_names([], cluster="anything", namespace="x|y", workload="z") == []


# -- the API -------------------------------------------------------------------------------------
def _api_get(demo_db: Path, url: str) -> httpx.Response:
    settings = settings_mod.load({"ledger": str(demo_db)}, environ={})
    ledger = Ledger.open(demo_db, create=False)
    try:
        app = create_app(settings, ledger)

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return await c.get(url)

        return asyncio.run(call())
    finally:
        ledger.close()


def test_api_refuses_an_unknown_exact_cluster(demo_db: Path) -> None:
    response = _api_get(demo_db, "/api/v1/versions?cluster=prod-eux")
    assert response.status_code == 400, response.text
    assert "did you mean prod-eu" in response.json()["error"]


def test_api_warns_of_a_dead_namespace_branch_in_a_header(demo_db: Path) -> None:
    response = _api_get(demo_db, "/api/v1/versions?namespace=shop&namespace=paymnts")
    assert response.status_code == 200, response.text
    warning = response.headers["X-Imagetrail-Warning"]
    assert "'paymnts'" in warning
    assert "did you mean payments?" in warning
    namespaces = {w.split("/")[1] for row in response.json() for w in row["workloads"]}
    assert namespaces == {"shop"}


# -- one grammar for workload names --------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("cart", True),
        ("shop/cart", True),
        ("Deployment/cart", True),
        ("prod-eu/shop/cart", True),
        ("shop/Deployment/cart", True),
        ("prod-eu/shop/Deployment/cart", True),
        ("prod-us/shop/cart", False),
        ("shop/StatefulSet/cart", False),
        ("prod-eu/orders/cart", False),
    ],
)
def test_workload_forms(spec: str, named: bool) -> None:
    parse_workload(spec)
    wl = {"cluster": "prod-eu", "namespace": "shop", "kind": "Deployment", "name": "cart"}
    assert matches_workload(spec, **wl) is named


def test_every_back_end_reads_the_forms_alike(demo_db: Path) -> None:
    ledger = Ledger.open(demo_db, create=False)
    try:
        for spec in ("prod-eu/shop/cart", "shop/Deployment/cart", "Deployment/cart", "shop/cart"):
            from_sql = {s.workload_ref.id for s in ledger.spans(workload=spec)}
            by_matcher = {
                s.workload_ref.id
                for s in ledger.spans()
                if matches_workload(
                    spec,
                    cluster=s.cluster,
                    namespace=s.namespace,
                    kind=s.workload_kind,
                    name=s.workload,
                )
            }
            assert from_sql, spec
            assert from_sql == by_matcher, spec
    finally:
        ledger.close()


def test_regex_branches() -> None:
    assert regex_branches("shop|paymnts") == ["shop", "paymnts"]
    assert regex_branches("(?:shop)|(?:paymnts)") == ["shop", "paymnts"]
    assert regex_branches("(shop|pay)") == ["shop", "pay"]
    assert regex_branches("a[|]b|c") == ["a[|]b", "c"]
    assert regex_branches(r"x\|y") == [r"x\|y"]


# -- the README's first commands after `make demo` ----------------------------------------------
def _readme_block(heading: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split(heading, 1)[1].split("```sh", 1)[1]
    lines = block.split("```", 1)[0].strip().splitlines()
    return [line.split("  #", 1)[0].strip() for line in lines if line.strip()]


def _readme_demo_commands() -> list[str]:
    return _readme_block("## Try the demo from the terminal")


def _readme_ledger_commands() -> list[str]:
    """The "Point it at your cluster" commands that read only the ledger: the ones a user
    tries on the demo ledger first (not install, sync, serve, nor a live Prometheus query)."""
    skip = ("pip ", "imagetrail sync", "imagetrail serve", "--prometheus", "--source prometheus")
    commands = _readme_block("## Point it at your cluster")
    return [c for c in commands if c.startswith("imagetrail ") and not any(s in c for s in skip)]


def _run_on_the_demo(command: str, home: Path, demo: Path) -> None:
    words = shlex.split(command)
    env_words = [w for w in words if re.match(r"^[A-Z_]+=", w)]
    args = words[len(env_words) + 1 :]
    env = {k: v.replace("~", str(home), 1) for k, _, v in (w.partition("=") for w in env_words)}
    env.setdefault("IMAGETRAIL_LEDGER", str(demo))
    r = invoke(args, env)
    assert r.code == 0, (command, r.err)
    assert "nothing found" not in r.out, command
    assert r.out.strip() or "wrote " in r.err, command


def test_the_readme_first_commands_work_after_the_demo(tmp_path: Path) -> None:
    home = tmp_path / "home"
    demo = home / ".cache" / "imagetrail" / "demo.db"
    ledger, _ = build_demo_ledger(demo)  # where and as `make demo` writes it (with its signals)
    ledger.close()
    commands = _readme_demo_commands()
    assert len(commands) >= 4
    assert all(".venv/bin/imagetrail" in c for c in commands)
    for command in commands:
        _run_on_the_demo(command, home, demo)
    # The cluster section's ledger-only commands work as printed on the demo ledger too (a
    # workload named by `namespace/name` alone is ambiguous there: three clusters run it).
    ledger_commands = _readme_ledger_commands()
    assert any(c.startswith("imagetrail history ") for c in ledger_commands)
    assert any(c.startswith("imagetrail report ") for c in ledger_commands)
    for command in ledger_commands:
        _run_on_the_demo(command, home, demo)


def test_the_readme_live_commands_name_their_prometheus() -> None:
    commands = _readme_block("## Point it at your cluster")
    for command in commands:
        if "--source prometheus" in command or command.startswith(
            ("imagetrail impact", "imagetrail capacity", "imagetrail sync", "imagetrail serve")
        ):
            assert "--prometheus http" in command, command
    for command in commands + _readme_demo_commands():
        words = shlex.split(command)
        if "history" in words or "capacity" in words:
            workload = words[words.index("history" if "history" in words else "capacity") + 1]
            assert workload.count("/") == 2, command  # cluster/namespace/name: one workload


def test_without_a_ledger_the_hint_points_at_the_demo(tmp_path: Path) -> None:
    # A real process: the default ledger's path is fixed when the settings are imported.
    home = tmp_path / "home"
    ledger, _ = build_demo_ledger(home / ".cache/imagetrail/demo.db", signals=False)
    ledger.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGETRAIL_", "XDG_"))}
    done = subprocess.run(
        [sys.executable, "-m", "imagetrail", "versions"],
        env={**env, "HOME": str(home)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    demo = home / ".cache/imagetrail/demo.db"
    assert f"IMAGETRAIL_LEDGER={demo} imagetrail versions" in done.stderr
    assert "no ledger at" in done.stderr
