"""Write the worker's outcome events to a SQLite history table.

This is how imbi-gateway turns outcomes into its webhook-history rows
(``handler``, ``status``, ``error``, ``duration_ms``), with a real sink and
the standard library only (sqlite3) besides this client:

    python outcomes_to_sqlite.py --nats-url nats://127.0.0.1:4222 --db history.sqlite

One row per action (``action_id``, the CloudEvent id the gateway
published), upserted as outcomes arrive:

- a row moves forward only: an outcome of an earlier attempt than the
  row's, or any outcome after a terminal one of the same attempt count, is
  ignored (a redelivered outcome repeats its attempt: at least once);
- ``deduplicated`` never replaces a row that already says ``success``
  (its duration is 0: the action ran on an earlier delivery);
- a replayed dead letter starts again at attempt 1 and is recognised by
  its outcome id (``<ce id>.replay.<n>.<attempt>``): it may overwrite.

The outcome is acked only after its row is committed (OutcomeReader acks
when the loop asks for the next one), so a crash never loses a row.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
from pathlib import Path

from imbi_worker_client import Outcome, OutcomeReader

SCHEMA = """
CREATE TABLE IF NOT EXISTS webhook_history (
    action_id    TEXT PRIMARY KEY,
    handler      TEXT NOT NULL,
    status       TEXT NOT NULL,      -- success | failed | pending
    error        TEXT,               -- "<reason>: <redacted error>"
    duration_ms  INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    outcome      TEXT NOT NULL,      -- the outcome status as published
    outcome_id   TEXT NOT NULL,
    project_slug TEXT,
    webhook_id   TEXT,
    updated_at   TEXT NOT NULL
)
"""

UPSERT = """
INSERT INTO webhook_history
    (action_id, handler, status, error, duration_ms, attempt, outcome, outcome_id,
     project_slug, webhook_id, updated_at)
VALUES (:action_id, :handler, :status, :error, :duration_ms, :attempt, :outcome, :outcome_id,
        :project_slug, :webhook_id, :time)
ON CONFLICT (action_id) DO UPDATE SET
    handler = excluded.handler,
    status = excluded.status,
    error = excluded.error,
    duration_ms = CASE WHEN excluded.outcome = 'deduplicated'
                       THEN webhook_history.duration_ms ELSE excluded.duration_ms END,
    attempt = excluded.attempt,
    outcome = excluded.outcome,
    outcome_id = excluded.outcome_id,
    project_slug = excluded.project_slug,
    webhook_id = excluded.webhook_id,
    updated_at = excluded.updated_at
WHERE :replay
   OR (excluded.attempt > webhook_history.attempt
       AND NOT (excluded.outcome = 'deduplicated' AND webhook_history.status = 'success'))
   OR (excluded.attempt = webhook_history.attempt
       AND webhook_history.status = 'pending' AND excluded.status <> 'pending')
"""


def open_db(path: str | Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute(SCHEMA)
    db.commit()
    return db


def record(db: sqlite3.Connection, outcome: Outcome) -> None:
    """Upsert the outcome's history row and commit."""
    row = outcome.history_row()
    row["outcome_id"] = outcome.id
    row["replay"] = ".replay." in outcome.id
    with db:
        db.execute(UPSERT, row)


async def run(nats_url: str, db_path: str, durable: str, idle_exit: float | None) -> int:
    db = open_db(db_path)
    n = 0
    try:
        async with await OutcomeReader.connect(
            nats_url, durable=durable, idle_timeout=idle_exit
        ) as reader:
            async for outcome in reader:
                record(db, outcome)
                n += 1
    finally:
        db.close()
    return n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nats-url", required=True)
    p.add_argument("--db", required=True, help="SQLite file (created if missing)")
    p.add_argument("--durable", default="imbi-gateway-history", help="durable consumer name")
    p.add_argument(
        "--idle-exit",
        type=float,
        default=None,
        help="exit after this many seconds without an outcome (default: run until interrupted)",
    )
    args = p.parse_args()
    n = asyncio.run(run(args.nats_url, args.db, args.durable, args.idle_exit))
    print(f"recorded {n} outcomes")


if __name__ == "__main__":
    main()
