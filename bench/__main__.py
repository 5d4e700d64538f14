"""`python -m bench`: every benchmark, each against a baseline measured in the same run."""

from __future__ import annotations

import argparse

from bench import (
    big_queues,
    campaigns,
    enrichment,
    environment,
    fairness,
    fairness_claims,
    historical_sync,
    limits,
    queue_stats,
    salesforce,
    slow_items,
    webhooks,
)

BENCHMARKS = [
    "historical-sync",
    "webhooks",
    "enrichment",
    "enrichment-slow-items",
    "campaigns",
    "salesforce",
    "queue-stats",
    "big-queues",
    "limits",
    "fairness",
]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        action="append",
        choices=BENCHMARKS,
        help="run just this benchmark (repeatable); default: all",
    )
    parser.add_argument("--calls", type=int, default=100_000, help="calls to import in batches")
    parser.add_argument(
        "--per-call", type=int, default=20_000, help="calls to import the seed's way, one by one"
    )
    parser.add_argument("--drain-events", type=int, default=50_000, help="webhook events to drain")
    parser.add_argument("--ingest-seconds", type=int, default=10, help="length of the wrk run")
    parser.add_argument("--transcripts", type=int, default=10_000, help="transcripts to fetch")
    parser.add_argument(
        "--slow-transcripts", type=int, default=3_000, help="transcripts per slow-items case"
    )
    parser.add_argument("--records", type=int, default=50_000, help="Salesforce records to sync")
    parser.add_argument(
        "--limit-calls", type=int, default=8_000, help="calls per agency at Ultravox's limits"
    )
    args = parser.parse_args()
    chosen = set(args.only or BENCHMARKS)
    with environment.prepared() as env:
        if "historical-sync" in chosen:
            rows = historical_sync.run(env, calls=args.calls, per_call=args.per_call)
            environment.print_table(
                "historical sync: import ended calls from the fake Ultravox", rows
            )
        if "webhooks" in chosen:
            rows = webhooks.run(ingest_seconds=args.ingest_seconds, drain_events=args.drain_events)
            environment.print_table("webhooks: ingest, drain, latency", rows)
        if "enrichment" in chosen:
            rows = enrichment.run(env, transcripts=args.transcripts)
            environment.print_table(
                "enrichment: transcripts from a fake Ultravox answering after 100 ms, 200/s per key",
                rows,
            )
        if "enrichment-slow-items" in chosen:
            environment.print_table(
                "enrichment with about one slow, hanging or throttled answer per batch of 200 "
                "(fake Ultravox: 100 ms, 200/s per key; ULTRAVOX_TIMEOUT_SECONDS=5)",
                slow_items.run(env, transcripts=args.slow_transcripts),
            )
        if "campaigns" in chosen:
            environment.print_table(
                "campaign-orchestrator: select and reserve on the database", campaigns.run()
            )
        if "salesforce" in chosen:
            environment.print_table(
                "sync-salesforce-leads: a backfill from the fake Salesforce",
                salesforce.run(records=args.records),
            )
        if "queue-stats" in chosen:
            environment.print_table(
                f"queue figures: /metrics and queue stats beside {queue_stats.COMPLETED:,} "
                "completed rows per queue",
                queue_stats.run(),
            )
        if "big-queues" in chosen:
            environment.print_table(
                f"the webhook and enrichment drains beside {big_queues.COMPLETED:,} completed and "
                f"{big_queues.DEAD:,} dead rows",
                big_queues.run(env, events=args.drain_events, transcripts=args.transcripts),
            )
        if "limits" in chosen:
            environment.print_table(
                "at Ultravox's limits: enrichment and a historical sync at once, 2 workers x 2",
                limits.run(calls=args.limit_calls),
            )
        if "fairness" in chosen:
            environment.print_table(
                "fair shares between agencies: B's new work while A has a backlog, "
                "fair claims beside FIFO",
                fairness.run(env) + fairness_claims.run(),
            )


if __name__ == "__main__":
    main()
