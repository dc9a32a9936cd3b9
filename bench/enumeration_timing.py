"""Answer times that could tell who has an account: registration (taken vs new email) and password reset.

    .venv/bin/python bench/enumeration_timing.py [--samples 15]    # --samples 2: a smoke run

The suite checks that both paths answer alike and hash alike (tests/test_abuse.py); how long each
takes depends on the machine, so the figures are measured here. Runs the demo hospital
(`bootstrap_demo`) under runserver on the embedded stack (bench/auth_user.py's setup), sends the two
kinds of request alternately, so that load from anything else weighs on both alike, and prints the
medians with the bound the suite once asserted: 50 ms or 30% of the slower median.
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import auth_user  # noqa: E402  (database, demo hospital, runserver, signal handling)
from auth_user import HOST, LOGIN, TENANT_HOST, BenchError, devstack  # noqa: E402

PASSWORD = "bench-Timing-pass-42"


def post(port: int, path: str, body: dict) -> float:
    """Seconds for one POST on a fresh connection; fails the bench on anything but 200/201."""
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        started = time.perf_counter()
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Host": TENANT_HOST, "Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        seconds = time.perf_counter() - started
    finally:
        conn.close()
    if response.status not in (200, 201):
        raise BenchError(f"POST {path} answered {response.status}")
    return seconds


def new_email() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}@example.org"


def medians_ms(send, known: str, samples: int) -> tuple[float, float]:
    times = {"known": [], "unknown": []}
    for _ in range(samples):
        for kind, email in (("known", known), ("unknown", new_email())):
            times[kind].append(send(email) * 1000)
    return statistics.median(times["known"]), statistics.median(times["unknown"])


def report(label: str, known: float, unknown: float) -> None:
    bound = max(50.0, 0.3 * max(known, unknown))
    verdict = "alike" if abs(known - unknown) < bound else "DIFFER"
    print(f"{label}: known {known:.1f} ms, unknown {unknown:.1f} ms, difference {abs(known - unknown):.1f} ms "
          f"(bound {bound:.0f} ms): {verdict}", flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=auth_user.bounded_int(1, 10_000), default=15,
                        help="requests of each kind per endpoint (default 15; 2 for a smoke run)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.chdir(auth_user.REPO)
    # The demo's address registers and resets far more often here than the default limits allow.
    for scope in ("REGISTRATION", "PASSWORD_RESET", "EMAIL"):
        os.environ[f"THROTTLE_{scope}_RATE"] = "100000/hour"
    devstack.install_signal_handlers()
    try:
        with devstack.Stack() as stack:
            try:
                auth_user.prepare(stack)
                devstack.ensure_broker(stack)  # mail is queued (nobody sends it): the path production takes
                with auth_user.Server(stack, "enumeration", 60) as server:
                    register = lambda email: post(server.port, "/accounts/registration/", {  # noqa: E731
                        "email": email, "password1": PASSWORD, "password2": PASSWORD})
                    reset = lambda email: post(server.port, "/accounts/password/reset/", {"email": email})  # noqa: E731
                    report(f"registration, median of {args.samples}", *medians_ms(register, LOGIN["email"],
                                                                                    args.samples))
                    report(f"password reset, median of {args.samples}", *medians_ms(reset, LOGIN["email"],
                                                                                      args.samples))
            except (BenchError, devstack.StepFailed) as exc:
                print(f"bench: error: {exc}", file=sys.stderr, flush=True)
                return 1
    except devstack.Interrupted as exc:
        return 128 + exc.signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
