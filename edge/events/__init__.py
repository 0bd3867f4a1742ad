"""Events on the device (issue 23): every published alert as a SQLite row, an opt-in picture, retention,
false-alert marks (edge/events/store.py, docs/events.md)."""

from .store import DB_NAME, EventStore, Retention, read_rule_counts

__all__ = ["DB_NAME", "EventStore", "Retention", "read_rule_counts"]
