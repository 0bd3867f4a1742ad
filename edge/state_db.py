"""Opening the daemon's SQLite state files (analytics, outbox, events) the one careful way.

Each file belongs to fashion-edge: one that holds another program's tables is refused before
anything (journal mode, tables) is written into it, with one line naming the file; the caller
turns any other SQLite or OS error into its own line (what is lost, what is not).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .errors import FashionEdgeError


def tables_in(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}


def connect_own(path: Path, table: str, what: str, busy_timeout_s: float,
                error: type[FashionEdgeError] = FashionEdgeError) -> sqlite3.Connection:
    """A connection to ``path`` (created when missing; autocommit: callers BEGIN/COMMIT), or ``error``
    when the file is another program's database (tables, none of them ``table``). ``what`` names
    the file in the message (e.g. "analytics database")."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=busy_timeout_s, check_same_thread=False, isolation_level=None)
    try:
        tables = tables_in(conn)
    except BaseException:
        conn.close()
        raise
    problem = foreign(tables, table, what)
    if problem is not None:
        conn.close()
        raise error(f"{problem}; nothing was written to it (move the file away or set service.state_dir)", path=path)
    return conn


def foreign(tables: set[str], table: str, what: str) -> str | None:
    """What is wrong with a file holding ``tables`` where fashion-edge's ``table`` belongs, or None
    (an empty file, or ours)."""
    if not tables or table in tables:
        return None
    return f"not a fashion-edge {what}: it holds table(s) {', '.join(sorted(tables)[:5])} of another program " \
           f"and no '{table}' table"


def columns_of(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
