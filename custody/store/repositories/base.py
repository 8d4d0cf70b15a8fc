"""What every repository shares: the transaction's connection, an insert that
a unique key turns into a no-op, rows read a chunk of cases at a time, and
PostgreSQL's transaction-scoped locks."""
from __future__ import annotations

from typing import Iterable, Iterator

from sqlalchemy import func, literal, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, RowMapping

IN_CHUNK = 1000  # ids per `IN (...)` list
# PostgreSQL advisory lock spaces (first key of the two-key form; custody/store/db.py has the migrations').
LOCK_AUDIT_CHAIN = 0x0C057001
LOCK_PERSON = 0x0C057002


class Repository:
    def __init__(self, conn: Connection):
        self.conn = conn

    def _insert_ignore(self, table, values: dict | list[dict]) -> int:
        """INSERT unless the unique key exists; returns rows inserted. A list of
        rows goes to the database in one call."""
        dialect = self.conn.dialect.name
        if dialect == "sqlite":
            stmt = sqlite_insert(table).on_conflict_do_nothing()
        elif dialect == "postgresql":
            stmt = pg_insert(table).on_conflict_do_nothing()
        else:  # pragma: no cover - other databases are not supported
            raise RuntimeError(f"unsupported database {dialect}")
        if isinstance(values, list) and not values:
            return 0
        # SQLAlchemy keeps an INSERT's row count only when asked (psycopg drops it
        # with the cursor); without it every insert would look like a conflict.
        return self.conn.execute(stmt.execution_options(preserve_rowcount=True), values).rowcount

    @staticmethod
    def _chunks(ids: list[str]) -> Iterator[list[str]]:
        """The ids a chunk at a time: SQLite refuses a statement with more than
        32,766 parameters, and a jail may have more open cases than that."""
        for first in range(0, len(ids), IN_CHUNK):
            yield ids[first:first + IN_CHUNK]

    def _rows_by_case(self, table, case_ids: list[str], *order) -> dict[str, list[RowMapping]]:
        """Rows of `table` for each of the cases, in `order`."""
        found: dict[str, list[RowMapping]] = {}
        for chunk in self._chunks(case_ids):
            for row in self.conn.execute(select(table).where(table.c.case_id.in_(chunk)).order_by(*order)).mappings():
                found.setdefault(row["case_id"], []).append(row)
        return found


def advisory_lock(conn: Connection, space: int, key: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(literal(space), func.hashtext(key))))


def advisory_locks(conn: Connection, space: int, keys: Iterable[str]) -> None:
    """Many locks in one round trip (a sweep batch appends to a hundred
    chains), taken in one order by every writer so that none waits in a circle."""
    keys = sorted(set(keys))
    if conn.dialect.name != "postgresql" or not keys:
        return
    if len(keys) == 1:
        return advisory_lock(conn, space, keys[0])
    conn.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(k)) FROM (SELECT k FROM "
                      "unnest(CAST(:keys AS text[])) WITH ORDINALITY AS u(k, n) ORDER BY n) AS in_order"),
                 {"space": space, "keys": keys})
