"""`python -m bench`: every benchmark, each against a baseline measured in the same run."""

from __future__ import annotations

import argparse

from bench import environment, historical_sync


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--calls", type=int, default=100_000, help="calls to import in batches")
    parser.add_argument(
        "--per-call", type=int, default=20_000, help="calls to import the seed's way, one by one"
    )
    args = parser.parse_args()
    with environment.prepared() as env:
        rows = historical_sync.run(env, calls=args.calls, per_call=args.per_call)
    environment.print_table("historical sync: import ended calls from the fake Ultravox", rows)


if __name__ == "__main__":
    main()
