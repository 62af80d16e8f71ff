"""The set-up logic of ``scripts/setup.sh``, run against fake package tools.

CI's machine has every package already, so it cannot show whether the set-up works on a fresh
one. Here ``apt-cache``, ``dpkg-query``, ``ldconfig`` and ``apt-get`` are fakes first on PATH
(``tests/setup_fixtures/bin``) that replay output captured on Debian 12 and reconstructed for
Ubuntu 24.04 (see ``tests/setup_fixtures/README.md``), written line by line as the real
programs do, so a check that would die of SIGPIPE under ``pipefail`` dies here too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "setup_fixtures"

#: dpkg-query's ${Status} of packages on a machine (what the fake answers).
INSTALLED = "install ok installed"
REMOVED = "deinstall ok config-files"  # removed, its configuration kept: not installed
BASE = ["python3", "python3-venv", "python3-dev", "libsqlite3-mod-spatialite"]
TEST_DEPS = ["fonts-noto-cjk", "wrk", "libatomic1", "chromium"]


def fake_system(
    tmp_path: Path, platform: str, statuses: dict[str, str], *, ldconfig: str = ""
) -> dict[str, str]:
    """The environment of a machine whose package tools answer from ``platform``'s fixtures."""
    system = tmp_path / "system"
    shutil.copytree(FIXTURES / platform, system)
    (system / "dpkg-status").write_text(
        "".join(f"{pkg} {status}\n" for pkg, status in statuses.items()), encoding="utf-8"
    )
    (system / "ldconfig-p.txt").write_text(ldconfig, encoding="utf-8")
    (tmp_path / "postgresql").mkdir()  # no server installed
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOGRID_")}
    env |= {
        "PATH": f"{FIXTURES / 'bin'}{os.pathsep}{env['PATH']}",
        "FAKE_SYSTEM": str(system),
        "PG_LIB": str(tmp_path / "postgresql"),
        "SPATIALITE_GLOBS": str(tmp_path / "lib" / "mod_spatialite.*"),
        "GEOGRID_CHROMIUM": "",
    }
    return env


def run_functions(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Source setup.sh (which sets ``-euo pipefail``) and run ``script`` with its functions."""
    return subprocess.run(
        ["bash", "-c", f". scripts/setup.sh\nAPT_UPDATED=1\n{script}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def answer(script: str, env: dict[str, str]) -> str:
    done = run_functions(script, env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def apt_log(env: dict[str, str]) -> list[str]:
    log = Path(env["FAKE_SYSTEM"]) / "apt-get.log"
    return log.read_text().splitlines() if log.exists() else []


def test_debian12_candidates_under_pipefail(tmp_path: Path) -> None:
    env = fake_system(tmp_path, "debian12", {})
    # The bug: `apt-cache policy chromium | grep -q …` failed with 141 on a yes.
    assert answer("apt_has_candidate chromium && echo yes", env) == "yes"
    assert answer("apt_candidate chromium", env) == "156.0.8078.114-1~deb12u1"
    assert answer("apt_candidate python3.11", env) == "3.11.2-6+deb12u9"
    # Known to apt but installable from nowhere, and unknown to apt.
    assert answer("apt_has_candidate mail-transport-agent || echo no", env) == "no"
    assert answer("apt_has_candidate chromium-browser || echo no", env) == "no"
    assert answer("apt_has_candidate no-such-package || echo no", env) == "no"
    assert answer("pg_candidate_major", env) == "15"


def test_ubuntu2404_chromium_is_snap_only(tmp_path: Path) -> None:
    env = fake_system(tmp_path, "ubuntu2404", {})
    assert answer("apt_has_candidate chromium || echo no", env) == "no"
    assert answer("apt_candidate chromium-browser", env) == "2:1snap1-0ubuntu2"
    assert answer("pg_candidate_major", env) == "16"
    # The set-up stops with what to do, and installs nothing.
    done = run_functions("TEST_DEPS=1; install_debian", env)
    assert done.returncode == 1
    assert "apt has no 'chromium' package here" in done.stderr
    assert "chromium-browser 2:1snap1-0ubuntu2 only installs the snap" in done.stderr
    assert "GEOGRID_CHROMIUM" in done.stderr
    assert not any(line.startswith("install") for line in apt_log(env))


def test_installed_packages_are_told_from_missing_and_removed(tmp_path: Path) -> None:
    env = fake_system(
        tmp_path,
        "debian12",
        {"python3": INSTALLED, "chromium": INSTALLED, "wrk": REMOVED},
    )
    assert answer("is_installed python3 && echo yes", env) == "yes"
    assert answer("is_installed wrk || echo no", env) == "no"
    assert answer("is_installed fonts-noto-cjk || echo no", env) == "no"
    assert answer("missing_of python3 wrk chromium fonts-noto-cjk", env).split() == [
        "wrk",
        "fonts-noto-cjk",
    ]


def _ldconfig_with_spatialite() -> str:
    """Debian 12's ``ldconfig -p`` (605 libraries) with a SpatiaLite module a third of the way
    in, as another distribution lists one: hundreds of lines follow the match."""
    lines = (FIXTURES / "debian12" / "ldconfig-p.txt").read_text().splitlines()
    at = len(lines) // 3
    entry = "\tmod_spatialite.so.8 (libc6,x86-64) => /usr/lib64/mod_spatialite.so.8"
    return "\n".join([*lines[:at], entry, *lines[at:]]) + "\n"


def test_spatialite_found_in_a_realistic_ldconfig_cache(tmp_path: Path) -> None:
    text = _ldconfig_with_spatialite()
    assert len(text) > 40_000 and text.index("mod_spatialite") < len(text) // 2
    env = fake_system(tmp_path, "debian12", {}, ldconfig=text)
    assert answer("has_spatialite && echo yes", env) == "yes"
    plain = fake_system(
        tmp_path / "plain",
        "debian12",
        {},
        ldconfig=(FIXTURES / "debian12" / "ldconfig-p.txt").read_text(),
    )
    assert answer("has_spatialite || echo no", plain) == "no"
    # A module where the globs look is found without the cache.
    (tmp_path / "plain" / "lib").mkdir()
    (tmp_path / "plain" / "lib" / "mod_spatialite.so").touch()
    assert answer("has_spatialite && echo yes", plain) == "yes"


def _copy_of_project(tmp_path: Path) -> Path:
    """The files setup.sh reads, in a folder of their own (no .venv, no map assets)."""
    project = tmp_path / "project"
    shutil.copytree(REPO / "scripts", project / "scripts")
    for name in ("pyproject.toml", "requirements.lock"):
        shutil.copy(REPO / name, project / name)
    return project


@pytest.mark.parametrize(
    ("args", "packages"),
    [
        (
            ["--check"],
            [*BASE, *TEST_DEPS, "postgresql-common", "postgresql", "postgresql-15-postgis-3"],
        ),
        (["--check", "--no-test-deps"], BASE),
    ],
)
def test_check_says_what_it_would_install_and_changes_nothing(
    tmp_path: Path, args: list[str], packages: list[str]
) -> None:
    env = fake_system(tmp_path, "debian12", {})
    project = _copy_of_project(tmp_path)
    before = sorted(p.relative_to(project) for p in project.rglob("*"))
    done = subprocess.run(
        ["bash", "scripts/setup.sh", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "would install (apt): " + " ".join(packages)
    assert f"would create {project}/.venv with " in done.stdout
    assert "would install geogrid and its dependencies" in done.stdout
    assert "would fetch the map assets" in done.stdout
    assert apt_log(env) == []  # not even `apt-get update`
    assert sorted(p.relative_to(project) for p in project.rglob("*")) == before


def test_check_on_a_machine_with_everything(tmp_path: Path) -> None:
    """This checkout's own virtualenv and assets, every package installed: nothing to do."""
    statuses = dict.fromkeys([*BASE, *TEST_DEPS, "postgresql-15-postgis-3"], INSTALLED)
    env = fake_system(tmp_path, "debian12", statuses)
    initdb = tmp_path / "postgresql" / "15" / "bin" / "initdb"
    initdb.parent.mkdir(parents=True)
    initdb.write_text("#!/bin/sh\n")
    initdb.chmod(0o755)
    if not (REPO / ".venv" / "bin" / "python").exists():
        pytest.fail("scripts/setup.sh makes .venv before the tests run")
    done = subprocess.run(
        ["bash", "scripts/setup.sh", "--check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "nothing to install: everything is in place\n"
    assert apt_log(env) == []


def test_no_script_matches_a_pipe_early_under_pipefail() -> None:
    """`cmd | grep -q`, `| head`, `| grep -m` … make cmd die of SIGPIPE: capture, then match."""
    early = re.compile(r"\|\s*(grep\s+(-\w*[qm]|--quiet|--max-count)|head\b|sed\s+-n\s*'?\d+q)")
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted((REPO / "scripts").glob("*.sh"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if early.search(line) and not line.lstrip().startswith("#")
    ]
    assert offenders == []


def test_every_installed_package_supports_debian12_python() -> None:
    """The pins install on the oldest Python the set-up supports, Debian 12's 3.11.2.

    CI's Python is newer, so only a fresh Debian machine would otherwise show a pin that needs
    more (soupsieve >= 3.0.2 needs 3.11.5; scripts/lock.sh checks the same when it re-pins).
    """
    from importlib import metadata

    from packaging.specifiers import SpecifierSet

    needing_more = sorted(
        f"{dist.metadata['Name']} {dist.version} needs Python {spec}"
        for dist in metadata.distributions()
        if (spec := dist.metadata.get("Requires-Python")) and "3.11.2" not in SpecifierSet(spec)
    )
    assert needing_more == []


def test_pg_refuses_a_socket_path_too_long_for_unix(tmp_path: Path) -> None:
    """PostgreSQL's socket lives in the cluster's folder; a path over 107 bytes is refused
    with the reason (scripts/test.sh keeps it short whatever --basetemp is)."""
    deep = tmp_path / ("a-very-long-folder-name-" * 4) / "cluster"
    done = subprocess.run(
        ["bash", "scripts/pg.sh", "start", str(deep)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Unix sockets allow 107" in done.stderr
    assert not deep.exists()  # the half-made cluster is cleaned up
