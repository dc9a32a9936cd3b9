"""Answer times that could tell who has an account: registration (taken vs new email) and password reset.

    .venv/bin/python -m bench enumeration_timing [--samples 15]    # --samples 2: a smoke run

The suite checks that both paths answer alike and hash alike (tests/test_abuse.py); how long each
takes depends on the machine, so the figures are measured here. Runs the demo hospital
(`bootstrap_demo`) under runserver on the embedded stack (as the auth_user scenario), sends the two
kinds of request alternately, so that load from anything else weighs on both alike, and prints the
medians with the bound the suite once asserted: 50 ms or 30% of the slower median.
"""

import os
import statistics
import uuid

from bench.driver import LOGIN, TENANT_HOST, BenchError, Server, bounded_int, prepare_demo, request

PASSWORD = "bench-Timing-pass-42"
SMOKE = ["--samples", "2"]
FIGURES = r"password reset, median of \d+: known [\d.]+ ms, unknown [\d.]+ ms"


def post(port: int, path: str, body: dict) -> float:
    """Seconds for one POST on a fresh connection; fails the bench on anything but 200/201."""
    status, _, seconds = request(port, "POST", path, host=TENANT_HOST, body=body, timeout=120)
    if status not in (200, 201):
        raise BenchError(f"POST {path} answered {status}")
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
    print(
        f"{label}: known {known:.1f} ms, unknown {unknown:.1f} ms, difference {abs(known - unknown):.1f} ms "
        f"(bound {bound:.0f} ms): {verdict}",
        flush=True,
    )


def add_arguments(parser) -> None:
    parser.add_argument(
        "--samples",
        type=bounded_int(1, 10_000),
        default=15,
        help="requests of each kind per endpoint (default 15; 2 for a smoke run)",
    )


def run(stack, args) -> int:
    # The demo's address registers and resets far more often here than the default limits allow.
    for scope in ("REGISTRATION", "PASSWORD_RESET", "EMAIL"):
        os.environ[f"THROTTLE_{scope}_RATE"] = "100000/hour"
    prepare_demo(stack)
    stack.ensure_broker()  # mail is queued (nobody sends it): the path production takes
    with Server(stack, "enumeration", 60) as server:

        def register(email: str) -> float:
            return post(
                server.port, "/accounts/registration/", {"email": email, "password1": PASSWORD, "password2": PASSWORD}
            )

        def reset(email: str) -> float:
            return post(server.port, "/accounts/password/reset/", {"email": email})

        report(f"registration, median of {args.samples}", *medians_ms(register, LOGIN["email"], args.samples))
        report(f"password reset, median of {args.samples}", *medians_ms(reset, LOGIN["email"], args.samples))
    return 0
