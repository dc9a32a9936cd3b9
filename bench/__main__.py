"""The benchmark runner: `python -m bench <scenario> [args]`, or `python -m bench --smoke [scenario ...]`.

    .venv/bin/python -m bench auth_user --requests 500
    .venv/bin/python -m bench --smoke           # every scenario in a run of seconds: it ran and printed figures

A scenario runs inside a devtools Stack: Ctrl-C or SIGTERM still stops its servers and drops its database.
The smoke run starts (or reuses) the embedded PostgreSQL once and runs each scenario in a process of its own
(each sets up Django on its own database), failing unless it exits 0 and prints its figures.
"""

import argparse
import importlib
import os
import re
import subprocess
import sys
import time

from bench.driver import BenchError, say
from devtools import REPO
from devtools.processes import StepFailed
from devtools.stack import Interrupted, Stack, install_signal_handlers

SCENARIOS = (
    "auth_user",
    "patients",
    "access_log",
    "provisioning",
    "enumeration_timing",
    "seed_compare",
    "multihost",
    "scale",
)


def scenario(name: str):
    return importlib.import_module(f"bench.{name}")


def run_scenario(name: str, argv: list[str]) -> int:
    module = scenario(name)
    parser = argparse.ArgumentParser(prog=f"python -m bench {name}", description=module.__doc__.splitlines()[0])
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    if hasattr(module, "validate"):
        module.validate(parser, args)
    os.chdir(REPO)
    install_signal_handlers()  # Ctrl-C / SIGTERM still stop the servers and the database
    try:
        with Stack() as stack:
            try:
                return module.run(stack, args)
            except (BenchError, StepFailed) as exc:
                print(f"bench: error: {exc}", file=sys.stderr, flush=True)
                return 1
    except Interrupted as exc:
        return 128 + exc.signum


def smoke_one(name: str) -> tuple[bool, float]:
    """Runs one scenario with its SMOKE arguments in a child, its output shown as it comes."""
    module = scenario(name)
    argv = [sys.executable, "-m", "bench", name, *module.SMOKE]
    say(f"smoke: {name} {' '.join(module.SMOKE)}")
    began = time.monotonic()
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        sys.stdout.write(line)
        lines.append(line)
    returncode = proc.wait()
    seconds = time.monotonic() - began
    printed = re.search(module.FIGURES, "".join(lines)) is not None
    if returncode != 0 or not printed:
        say(f"smoke: {name} FAILED (exit code {returncode}, figures {'printed' if printed else 'missing'})")
    return returncode == 0 and printed, seconds


def smoke(names: list[str]) -> int:
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        sys.exit(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    install_signal_handlers()
    results = {}
    try:
        with Stack() as stack:
            stack.ensure_database()  # once, for every scenario (each reuses it through DATABASE_URL)
            for name in names or SCENARIOS:
                results[name] = smoke_one(name)
    except Interrupted as exc:
        return 128 + exc.signum
    except StepFailed as exc:
        print(f"bench: error: {exc}", file=sys.stderr, flush=True)
        return 1
    say(
        "smoke: "
        + ", ".join(f"{name} {'ok' if ok else 'FAILED'} ({seconds:.0f} s)" for name, (ok, seconds) in results.items())
    )
    return 0 if all(ok for ok, _ in results.values()) else 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["--smoke"]:
        return smoke(argv[1:])
    if not argv or argv[0] not in SCENARIOS:
        print(
            f"usage: python -m bench <scenario> [args] | --smoke [scenario ...]\nscenarios: {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    return run_scenario(argv[0], argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
