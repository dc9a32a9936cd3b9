"""Benchmarks that print figures: scenarios of one runner, `python -m bench <scenario> [args]` (bench/__main__.py).

Each scenario module has a docstring (its help), `add_arguments(parser)`, `run(stack, args)`, `SMOKE` (the
arguments of a run of seconds) and `FIGURES` (a pattern its report prints). Shared code is in bench/driver.py;
the servers come from devtools.
"""
