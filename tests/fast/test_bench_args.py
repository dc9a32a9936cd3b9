"""The benchmarks' defaults fit any size asked for (`make bench-provisioning BENCH_ARGS="--hospitals 100"`)."""

import argparse

import pytest

from bench import provisioning


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    provisioning.add_arguments(parser)
    args = parser.parse_args(argv)
    provisioning.validate(parser, args)
    return args


@pytest.mark.parametrize(
    ("hospitals", "checkpoints"), [(None, [1, 100, 300]), ("100", [1, 100]), ("50", [1, 50]), ("1", [1])]
)
def test_provisioning_checkpoints_follow_the_number_of_hospitals(hospitals, checkpoints):
    args = parse(*(["--hospitals", hospitals] if hospitals else []))
    assert args.checkpoints == checkpoints


def test_checkpoints_given_beyond_the_hospitals_are_refused():
    with pytest.raises(SystemExit):
        parse("--hospitals", "50", "--checkpoints", "1,100")
