"""The unit of work over SQL: one transaction, the repositories it exposes, and
the compare-and-set save that makes every transition safe to race."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from sqlalchemy import and_, bindparam, func, insert, literal, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, RowMapping

from custody.store import schema as t
from models.audit_chain import GENESIS, chain_of, entry_hash, first_broken_link
from models.case import Case
from models.domain import OPEN_STATUSES, Detainer, DetainerForm, RosterEntry, Status, Transition, WarrantForm
from models.notices import Addressed
from models.policy import Policy
from models.rules import NEVER_READ

OPEN = [s.value for s in OPEN_STATUSES]
IN_CHUNK = 1000  # ids per `IN (...)` list
# PostgreSQL advisory lock spaces (first key of the two-key form).
_LOCK_AUDIT_CHAIN = 0x0C057001
_LOCK_PERSON = 0x0C057002


class ConcurrentUpdate(RuntimeError):
    """Someone else changed the case first; re-read and decide again."""


class SqlUnitOfWork:
    def __init__(self, engine: Engine, read_only: bool = False):
        self.engine = engine
        self.read_only = read_only
        self.conn: Connection | None = None

    def __enter__(self) -> "SqlUnitOfWork":
        self.conn = self.engine.connect()
        if self.read_only:
            self.conn = self.conn.execution_options(custody_read_only=True)
        self._tx = self.conn.begin()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self.conn.close()
            self.conn = None

    def commit(self) -> None:
        self._tx.commit()

    def rollback(self) -> None:
        self._tx.rollback()

    def savepoint(self):
        """A nested transaction: its `rollback()` undoes only what was done since."""
        return self.conn.begin_nested()

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

    # --- inbox -----------------------------------------------------------------

    def inbox_get(self, event_id: str) -> RowMapping | None:
        return self.conn.execute(select(t.inbox).where(t.inbox.c.event_id == event_id)).mappings().first()

    def inbox_add(self, **values: Any) -> bool:
        return self._insert_ignore(t.inbox, values) == 1

    def inbox_set_outcome(self, event_id: str, case_id: str | None, outcome: str) -> None:
        self.conn.execute(update(t.inbox).where(t.inbox.c.event_id == event_id).values(case_id=case_id, outcome=outcome))

    def inbox_pending(self, booking_number: str) -> list[RowMapping]:
        """Events about this booking that arrived before any case existed for it."""
        return list(self.conn.execute(
            select(t.inbox).where(t.inbox.c.booking_number == booking_number, t.inbox.c.case_id.is_(None))
            .order_by(t.inbox.c.occurred_at, t.inbox.c.received_at)
        ).mappings())

    def inbox_for_case(self, case_id: str) -> list[RowMapping]:
        return self.inbox_for_cases([case_id]).get(case_id, [])

    def inbox_for_cases(self, case_ids: list[str]) -> dict[str, list[RowMapping]]:
        return self._rows_by_case(t.inbox, case_ids, t.inbox.c.received_at, t.inbox.c.event_id)

    def _rows_by_case(self, table, case_ids: list[str], *order) -> dict[str, list[RowMapping]]:
        """Rows of `table` for each of the cases, in `order`, asked a chunk of
        cases at a time (SQLite's limit on a statement's parameters)."""
        found: dict[str, list[RowMapping]] = {}
        for first in range(0, len(case_ids), IN_CHUNK):
            for row in self.conn.execute(select(table).where(table.c.case_id.in_(case_ids[first:first + IN_CHUNK]))
                                         .order_by(*order)).mappings():
                found.setdefault(row["case_id"], []).append(row)
        return found

    # --- bookings ----------------------------------------------------------------

    def booking_get(self, booking_number: str) -> RowMapping | None:
        return self.conn.execute(select(t.bookings).where(t.bookings.c.booking_number == booking_number)).mappings().first()

    def booking_touch(self, booking_number: str, facility: str, now: datetime) -> RowMapping:
        """The booking's row, locked until commit: events about one booking are
        applied one after another (on SQLite every writer is already alone), so
        T0 corrections that touch several cases of it never cross each other."""
        self._insert_ignore(t.bookings, dict(booking_number=booking_number, facility=facility, first_seen_at=now))
        return self.conn.execute(select(t.bookings).where(t.bookings.c.booking_number == booking_number)
                                 .with_for_update()).mappings().one()

    def lock_person(self, a_number: str) -> None:
        """Rule 11 (one active case per person) is a read-then-insert across
        bookings: two detainers for one A-number at two bookings must not both
        find no open case. PostgreSQL: a lock per A-number until commit."""
        self._advisory_lock(_LOCK_PERSON, a_number)

    def _advisory_lock(self, space: int, key: str) -> None:
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(select(func.pg_advisory_xact_lock(literal(space), func.hashtext(key))))

    def _advisory_locks(self, space: int, keys: Iterable[str]) -> None:
        """Many locks in one round trip (a sweep batch appends to a hundred
        chains), taken in one order by every writer so that none waits in a circle."""
        keys = sorted(set(keys))
        if self.conn.dialect.name != "postgresql" or not keys:
            return
        if len(keys) == 1:
            return self._advisory_lock(space, keys[0])
        self.conn.execute(text("SELECT pg_advisory_xact_lock(:space, hashtext(k)) FROM (SELECT k FROM "
                               "unnest(CAST(:keys AS text[])) WITH ORDINALITY AS u(k, n) ORDER BY n) AS in_order"),
                          {"space": space, "keys": keys})

    def booking_update(self, booking_number: str, **values: Any) -> None:
        self.conn.execute(update(t.bookings).where(t.bookings.c.booking_number == booking_number).values(**values))

    # --- cases -------------------------------------------------------------------

    def next_case_id(self, year: int) -> str:
        name = f"case-{year}"
        self._insert_ignore(t.counters, dict(name=name, value=0))
        self.conn.execute(update(t.counters).where(t.counters.c.name == name).values(value=t.counters.c.value + 1))
        value = self.conn.execute(select(t.counters.c.value).where(t.counters.c.name == name)).scalar_one()
        return f"{year}-{value:05d}"

    def case_get(self, case_id: str) -> Case | None:
        row = self.conn.execute(self._case_select().where(t.cases.c.case_id == case_id)).mappings().first()
        return _case_from_row(row) if row else None

    def case_open_for(self, booking_number: str, a_number: str | None = None) -> Case | None:
        """Rule 11: one active case per person, found by booking or by A-number."""
        who = t.cases.c.booking_number == booking_number
        if a_number:
            who = or_(who, t.cases.c.a_number == a_number)
        row = self.conn.execute(
            self._case_select().where(who, t.cases.c.status.in_(OPEN)).order_by(t.cases.c.opened_at)
        ).mappings().first()
        return _case_from_row(row) if row else None

    def case_latest_for_booking(self, booking_number: str) -> Case | None:
        row = self.conn.execute(
            self._case_select().where(t.cases.c.booking_number == booking_number)
            .order_by(t.cases.c.opened_at.desc(), t.cases.c.case_id.desc())
        ).mappings().first()
        return _case_from_row(row) if row else None

    def cases_for_booking(self, booking_number: str) -> list[Case]:
        rows = self.conn.execute(self._case_select().where(t.cases.c.booking_number == booking_number)
                                 .order_by(t.cases.c.opened_at)).mappings()
        return [_case_from_row(r) for r in rows]

    def cases_open(self, limit: int | None = None, orders_first: bool = False) -> list[Case]:
        """Open cases, soonest deadline first (cases with no deadline yet last);
        `limit`: only that many of them. `orders_first`: every release ordered and
        not yet confirmed comes before the rest (a release ordered without a
        hold is due long before the deadline that would rank it)."""
        c = t.cases.c
        first = (c.status != Status.RELEASE_ORDERED.value,) if orders_first else ()
        query = self._case_select().where(c.status.in_(OPEN)).order_by(*first, c.deadline_at.is_(None), c.deadline_at, c.case_id)
        rows = self.conn.execute(query if limit is None else query.limit(limit)).mappings()
        return [_case_from_row(r) for r in rows]

    def open_counts(self) -> dict[str, int]:
        """How many open cases are in each status."""
        return dict(self.conn.execute(select(t.cases.c.status, func.count()).where(t.cases.c.status.in_(OPEN))
                                      .group_by(t.cases.c.status)).all())

    def cases_all(self) -> list[Case]:
        return [_case_from_row(r) for r in self.conn.execute(self._case_select()).mappings()]

    def due_cases(self, now: datetime, limit: int = 10000) -> list[tuple[str, datetime]]:
        return [tuple(r) for r in self.conn.execute(
            select(t.cases.c.case_id, t.cases.c.next_due_at).where(t.cases.c.status.in_(OPEN), t.cases.c.next_due_at <= now)
            .order_by(t.cases.c.next_due_at).limit(limit)
        )]

    def next_due_instant(self, excluding: list[str] = ()) -> datetime | None:
        query = select(func.min(t.cases.c.next_due_at)).where(t.cases.c.status.in_(OPEN))
        if excluding:
            query = query.where(t.cases.c.case_id.not_in(list(excluding)))
        return self.conn.execute(query).scalar_one_or_none()

    def _case_select(self):
        d = t.detainers
        detainer_cols = [c.label(f"d_{c.name}") for c in d.c]
        return select(t.cases, *detainer_cols).join(d, d.c.id == t.cases.c.current_detainer_id)

    def case_insert(self, case: Case, detainer_id: int, policy: Policy, now: datetime) -> None:
        values = _case_values(case, policy, now)
        values.update(case_id=case.case_id, booking_number=case.booking_number, facility=case.facility,
                      opened_at=case.opened_at, a_number=case.detainer.a_number,
                      current_detainer_id=detainer_id, version=1)
        self.conn.execute(insert(t.cases).values(**values))
        case.version = 1

    def cases_for_update(self, case_ids: list[str], skip_locked: bool = True) -> list[tuple[Case, dict[str, Any]]]:
        """The cases (in no particular order) with the state stored for them, read
        to be changed in this transaction. SQLite has one writer at a time (BEGIN
        IMMEDIATE); on PostgreSQL the rows are locked, and with skip_locked a row
        another writer holds is skipped: that writer is changing it and decides
        it, and the next pass finds it if anything is still due."""
        query = self._case_select().where(t.cases.c.case_id.in_(case_ids))
        if self.conn.dialect.name == "postgresql":
            query = query.with_for_update(of=t.cases, skip_locked=skip_locked)
        return [(_case_from_row(r), {name: r[name] for name in SAVED_STATE}) for r in self.conn.execute(query).mappings()]

    def open_cases_with_due_instants(self) -> list[tuple[Case, datetime | None]]:
        """Every open case with the next due instant stored for it."""
        rows = self.conn.execute(self._case_select().where(t.cases.c.status.in_(OPEN))).mappings()
        return [(_case_from_row(r), r["next_due_at"]) for r in rows]

    def case_set_next_due(self, case: Case, at: datetime | None) -> bool:
        """Only the derived instant, and only if nobody changed the case since it
        was read; the version stays (nothing about the case itself changed)."""
        return self.conn.execute(update(t.cases).where(t.cases.c.case_id == case.case_id, t.cases.c.version == case.version)
                                 .values(next_due_at=at)).rowcount == 1

    def cases_save(self, changes: list[tuple[Case, datetime]], policy: Policy) -> None:
        """Compare-and-set on the version read, for many cases (each with when it
        was decided) in one call: if any changed meanwhile, none is written
        (ConcurrentUpdate)."""
        if not changes:
            return
        rows = [{**_case_values(case, policy, now), "version": case.version + 1, "b_case_id": case.case_id,
                 "b_version": case.version} for case, now in changes]
        result = self.conn.execute(_SAVE_CASE.execution_options(preserve_rowcount=True), rows)
        if result.rowcount != len(changes):
            raise ConcurrentUpdate(", ".join(case.case_id for case, _ in changes))
        for case, _ in changes:
            case.version += 1

    def case_save(self, case: Case, policy: Policy, now: datetime, detainer_id: int | None = None) -> None:
        """Compare-and-set on the version read: a concurrent writer makes this fail
        instead of silently overwriting its decision."""
        values = _case_values(case, policy, now)
        values["version"] = case.version + 1
        if detainer_id is not None:
            values["current_detainer_id"] = detainer_id
        result = self.conn.execute(
            update(t.cases).where(t.cases.c.case_id == case.case_id, t.cases.c.version == case.version).values(**values)
        )
        if result.rowcount != 1:
            raise ConcurrentUpdate(case.case_id)
        case.version += 1

    # --- detainers -------------------------------------------------------------------

    def detainer_find(self, a_number: str, ice_event_number: str) -> RowMapping | None:
        return self.conn.execute(select(t.detainers).where(
            t.detainers.c.a_number == a_number, t.detainers.c.ice_event_number == ice_event_number)).mappings().first()

    def detainer_add(self, case_id: str, detainer: Detainer) -> int:
        values = {k: getattr(detainer, k) for k in (
            "a_number", "ice_event_number", "requests_custody", "issuing_office", "issued_at", "received_at",
            "warrant_number", "identity_verified", "subject_name", "subject_dob", "event_id")}
        values.update(case_id=case_id, form=str(detainer.form),
                      warrant_form=str(detainer.warrant_form) if detainer.warrant_form else None)
        return self.conn.execute(insert(t.detainers).values(**values)).inserted_primary_key[0]

    def detainers_for_case(self, case_id: str) -> list[RowMapping]:
        return self.detainers_for_cases([case_id]).get(case_id, [])

    def detainers_for_cases(self, case_ids: list[str]) -> dict[str, list[RowMapping]]:
        return self._rows_by_case(t.detainers, case_ids, t.detainers.c.id)

    # --- audit and outbox ----------------------------------------------------------------

    def audit_add(self, *, case_id: str | None, at: datetime, actor: str, source_event_id: str | None, transition: Transition) -> None:
        self.audit_add_many([AuditEntry(case_id, at, actor, source_event_id, transition)])

    def audit_add_many(self, entries: list["AuditEntry"]) -> None:
        """Append to each case's hash chain, in order. UNIQUE(chain, seq) refuses
        a fork; to not need it, appenders of one chain take turns: on PostgreSQL a
        lock per chain until commit, taken in one order so two writers never wait
        on each other (the `system` chain has no case row to serialise its
        writers, and two of them would otherwise read the same head); on SQLite
        the one writer at a time."""
        if not entries:
            return
        a = t.audit
        chains = {chain_of(e.case_id) for e in entries}
        self._advisory_locks(_LOCK_AUDIT_CHAIN, chains)
        last = select(a.c.chain, func.max(a.c.seq)).where(a.c.chain.in_(chains)).group_by(a.c.chain)
        heads = {chain: (seq, digest) for chain, seq, digest in self.conn.execute(
            select(a.c.chain, a.c.seq, a.c.entry_hash).where(tuple_(a.c.chain, a.c.seq).in_(last)))}
        rows = []
        for e in entries:
            chain = chain_of(e.case_id)
            seq, prev = heads.get(chain, (0, GENESIS))
            entry = dict(case_id=e.case_id, at=e.at, actor=e.actor, source_event_id=e.source_event_id,
                         action=e.transition.action,
                         status_before=e.transition.status_before and str(e.transition.status_before),
                         status_after=e.transition.status_after and str(e.transition.status_after),
                         reason=e.transition.reason, chain=chain, seq=seq + 1, prev_hash=prev)
            entry["entry_hash"] = entry_hash(prev, entry)
            heads[chain] = (seq + 1, entry["entry_hash"])
            rows.append(entry)
        self.conn.execute(insert(a), rows)
        self._move_heads({chain: heads[chain] for chain in chains})

    def _move_heads(self, heads: dict[str, tuple[int, str]]) -> None:
        """Each chain's head to its newest entry, in the appending transaction."""
        h = t.audit_heads
        upsert = sqlite_insert(h) if self.conn.dialect.name == "sqlite" else pg_insert(h)
        upsert = upsert.on_conflict_do_update(index_elements=[h.c.chain], where=h.c.seq < upsert.excluded.seq,
                                              set_={"seq": upsert.excluded.seq, "entry_hash": upsert.excluded.entry_hash})
        self.conn.execute(upsert, [dict(chain=chain, seq=seq, entry_hash=digest) for chain, (seq, digest) in heads.items()])

    def audit_broken_links(self, case_id: str | None = None) -> list[dict[str, Any]]:
        """The first broken link of every chain that has one (all chains, or one case's)."""
        a = t.audit
        query = select(a).order_by(a.c.chain, a.c.seq)
        if case_id is not None:
            query = query.where(a.c.chain == chain_of(case_id))
        h = t.audit_heads
        head_query = select(h.c.chain, h.c.seq, h.c.entry_hash)
        if case_id is not None:
            head_query = head_query.where(h.c.chain == chain_of(case_id))
        heads = {chain: (seq, digest) for chain, seq, digest in self.conn.execute(head_query)}
        broken, chain, entries = [], None, []
        for row in list(self.conn.execute(query).mappings()) + [None]:
            if row is None or row["chain"] != chain:
                if entries:
                    found = first_broken_link(entries, heads.pop(chain, None))
                    if found:
                        broken.append(found)
                chain, entries = (row["chain"] if row else None), []
            if row is not None:
                entries.append(row)
        for chain, head in heads.items():  # a chain whose every entry is gone
            broken.append(first_broken_link([], head, chain))
        return broken

    def audit_count(self) -> int:
        return self.conn.execute(select(func.count()).select_from(t.audit)).scalar_one()

    def audit_for_case(self, case_id: str) -> list[RowMapping]:
        return self.audit_for_cases([case_id]).get(case_id, [])

    def audit_for_cases(self, case_ids: list[str]) -> dict[str, list[RowMapping]]:
        return self._rows_by_case(t.audit, case_ids, t.audit.c.id)

    def outbox_add_many(self, messages: list[Addressed]) -> int:
        """One row per message, unless its idempotency key is already there;
        returns the rows added."""
        return self._insert_ignore(t.outbox, [dict(
            idempotency_key=m.key, case_id=m.case_id, kind=m.kind, recipient_group=m.group, urgency=m.urgency,
            subject=m.message.subject, body=m.message.body, state="pending", created_at=m.at, attempts=0,
            next_attempt_at=m.at) for m in messages])

    # --- the Prefect runs that mirror cases ---------------------------------------------

    def case_run_get(self, case_id: str) -> RowMapping | None:
        return self.conn.execute(select(t.case_runs).where(t.case_runs.c.case_id == case_id)).mappings().first()

    def case_run_record(self, case_id: str, flow_run_id: str | None, now: datetime, error: str | None = None) -> None:
        self._insert_ignore(t.case_runs, dict(case_id=case_id, flow_run_id=None, created_at=now, synced_version=0))
        values: dict[str, Any] = {"last_error": error}
        if flow_run_id is not None:
            values["flow_run_id"] = flow_run_id
        self.conn.execute(update(t.case_runs).where(t.case_runs.c.case_id == case_id).values(**values))
        self.mirrors_caught_up(case_id)

    def case_run_synced(self, case_id: str, version: int, digest: str | None = None) -> None:
        """The run has seen `version` (never moves back). With the digest of what
        it mirrored at that version; at the same version a digest fills in."""
        r = t.case_runs
        values: dict[str, Any] = {"synced_version": version}
        if digest is not None:
            values["mirror_digest"] = digest
            newer = or_(r.c.synced_version < version, and_(r.c.synced_version == version, r.c.mirror_digest.is_distinct_from(digest)))
        else:
            newer = r.c.synced_version < version
        self.conn.execute(update(r).where(r.c.case_id == case_id, newer).values(**values))
        self.mirrors_caught_up(case_id)

    def case_run_synced_unchanged(self, case_id: str, version: int, seen_version: int, digest: str) -> bool:
        """Compare-and-set: mark `version` seen only if the row still says what
        the caller read (`seen_version`, `digest`); False if the run wrote since."""
        r = t.case_runs
        done = self.conn.execute(update(r).where(r.c.case_id == case_id, r.c.synced_version == seen_version,
                                                 r.c.mirror_digest == digest, r.c.synced_version < version)
                                 .values(synced_version=version).execution_options(preserve_rowcount=True))
        if done.rowcount != 1:
            return False
        self.mirrors_caught_up(case_id)
        return True

    def mirrors_caught_up(self, *case_ids: str) -> None:
        """Clear each case's mirror_pending if its run exists and has seen its
        latest version; a change committed meanwhile keeps it set (the version
        compared is the one this statement finds)."""
        c, r = t.cases, t.case_runs
        seen = select(r.c.case_id).where(r.c.case_id == c.c.case_id, r.c.flow_run_id.is_not(None),
                                         r.c.synced_version >= c.c.version).exists()
        self.conn.execute(update(c).where(c.c.case_id.in_(case_ids), c.c.mirror_pending.is_(True), seen).values(mirror_pending=False))

    def cases_out_of_sync(self, limit: int = 500) -> list[RowMapping]:
        """Cases whose run is missing or has not seen the latest version."""
        c, r = t.cases, t.case_runs
        return list(self.conn.execute(
            select(c.c.case_id, c.c.facility, c.c.version, c.c.status, r.c.flow_run_id, r.c.synced_version)
            .select_from(c.outerjoin(r, r.c.case_id == c.c.case_id))
            .where(c.c.mirror_pending.is_(True),  # through its partial index: the waiting cases in step are not read
                   or_(r.c.case_id.is_(None), r.c.flow_run_id.is_(None), r.c.synced_version < c.c.version))
            .order_by(c.c.next_due_at, c.c.case_id).limit(limit)
        ).mappings())

    # --- officers' reports read from the Prefect UI ------------------------------------

    def reports_read_through(self, case_ids: list[str]) -> dict[str, datetime]:
        """For those of the cases that have a run (and so a form an officer may
        have submitted): the instant through which the forms have been read;
        the start of time for all if no reader has ever finished a pass."""
        r = t.case_runs
        with_runs = list(self.conn.execute(select(r.c.case_id).where(r.c.case_id.in_(case_ids), r.c.flow_run_id.is_not(None)))
                         .scalars())
        if not with_runs:
            return {}
        through = self.conn.execute(select(func.max(t.report_reads.c.read_through))).scalar_one_or_none()
        return dict.fromkeys(with_runs, through or NEVER_READ)

    def runs_awaiting_service(self) -> list[RowMapping]:
        """The cases whose run may be asking an officer for the service (status
        release_authorized, a run known), with when their window opened."""
        c, r = t.cases, t.case_runs
        return list(self.conn.execute(
            select(c.c.case_id, r.c.flow_run_id, c.c.release_authorized_at)
            .select_from(c.join(r, r.c.case_id == c.c.case_id))
            .where(c.c.status == Status.RELEASE_AUTHORIZED.value, r.c.flow_run_id.is_not(None))).mappings())

    def reports_read(self, source: str, through: datetime, now: datetime, error: str | None = None) -> None:
        """A reader has read every report stored by `through` (never moves back);
        `error`: why its latest pass failed (None: it did not)."""
        rr = t.report_reads
        self._insert_ignore(rr, dict(source=source, read_through=through, updated_at=now, last_error=error))
        self.conn.execute(update(rr).where(rr.c.source == source, rr.c.read_through < through)
                          .values(read_through=through))
        self.conn.execute(update(rr).where(rr.c.source == source).values(updated_at=now, last_error=error))

    def outbox_add_alert(self, *, key: str, kind: str, groups: tuple[str, ...], urgency: str, subject: str, body: str,
                         now: datetime, case_id: str | None = None) -> int:
        """An alert that is not a step of a case (a failed run, an undelivered notice)."""
        return sum(self._insert_ignore(t.outbox, dict(
            idempotency_key=f"{key}:{group}", case_id=case_id, kind=kind, recipient_group=group, urgency=urgency,
            subject=subject, body=body, state="pending", created_at=now, attempts=0, next_attempt_at=now))
            for group in groups)

    # --- delivery -------------------------------------------------------------------------

    def outbox_deliverable(self, now: datetime, limit: int) -> list[int]:
        o = t.outbox
        return list(self.conn.execute(
            select(o.c.id).where(o.c.state == "pending", o.c.next_attempt_at <= now,
                                 or_(o.c.claimed_until.is_(None), o.c.claimed_until < now))
            .order_by(o.c.next_attempt_at, o.c.id).limit(limit)).scalars())

    def outbox_claim(self, outbox_id: int, relay: str, now: datetime, until: datetime) -> bool:
        """Compare-and-set: only one relay holds a row at a time, so two healthy
        relays never send the same row twice."""
        o = t.outbox
        return self.conn.execute(update(o).where(
            o.c.id == outbox_id, o.c.state == "pending", or_(o.c.claimed_until.is_(None), o.c.claimed_until < now))
            .values(claimed_by=relay, claimed_until=until)).rowcount == 1

    def outbox_row(self, outbox_id: int) -> RowMapping:
        return self.conn.execute(select(t.outbox).where(t.outbox.c.id == outbox_id)).mappings().one()

    def outbox_delivered_channels(self, outbox_id: int) -> set[str]:
        a = t.delivery_attempts
        return set(self.conn.execute(select(a.c.channel).where(a.c.outbox_id == outbox_id, a.c.ok.is_(True))).scalars())

    def attempt_add(self, outbox_id: int, at: datetime, relay: str, channel: str, ok: bool, error: str | None) -> None:
        self.conn.execute(insert(t.delivery_attempts).values(outbox_id=outbox_id, at=at, relay=relay, channel=channel,
                                                             ok=ok, error=error))

    def outbox_settle(self, outbox_id: int, relay: str, **values: Any) -> bool:
        """Record the outcome, only if this relay still holds the claim."""
        o = t.outbox
        values.update(claimed_by=None, claimed_until=None)
        return self.conn.execute(update(o).where(o.c.id == outbox_id, o.c.claimed_by == relay, o.c.state == "pending")
                                 .values(**values)).rowcount == 1

    def outbox_recent(self, limit: int) -> list[RowMapping]:
        o = t.outbox
        return list(self.conn.execute(select(o).order_by(o.c.created_at.desc(), o.c.id.desc()).limit(limit)).mappings())

    def unacknowledged_ice_notices(self, case_ids: list[str]) -> dict[str, list[str]]:
        """Asked a chunk of cases at a time: SQLite refuses a statement with more
        than 32,766 parameters, and a jail may have more open cases than that."""
        o = t.outbox
        found: dict[str, list[str]] = {}
        for first in range(0, len(case_ids), IN_CHUNK):
            for case_id, kind in self.conn.execute(
                    select(o.c.case_id, o.c.kind).where(o.c.case_id.in_(case_ids[first:first + IN_CHUNK]),
                                                        o.c.recipient_group == "ice", o.c.acknowledged_at.is_(None))
                    .order_by(o.c.id)):
                found.setdefault(case_id, []).append(kind)
        return found

    def outbox_for_case(self, case_id: str) -> list[RowMapping]:
        return list(self.conn.execute(select(t.outbox).where(t.outbox.c.case_id == case_id).order_by(t.outbox.c.id)).mappings())

    def attempts_for(self, outbox_id: int) -> list[RowMapping]:
        a = t.delivery_attempts
        return list(self.conn.execute(select(a).where(a.c.outbox_id == outbox_id).order_by(a.c.id)).mappings())

    def outbox_acknowledge(self, case_id: str, kind: str, at: datetime, by: str, queued_by: datetime) -> int:
        """ICE's acknowledgement, at `at`, of the notices of this kind queued by
        `queued_by`: a notice queued later cannot be what was acknowledged."""
        o = t.outbox
        return self.conn.execute(update(o).where(o.c.case_id == case_id, o.c.kind == kind, o.c.recipient_group == "ice",
                                                 o.c.acknowledged_at.is_(None), o.c.created_at <= queued_by)
                                 .values(acknowledged_at=at, acknowledged_by=by)).rowcount

    def first_unacknowledged_queued_at(self, case_id: str, kind: str) -> datetime | None:
        o = t.outbox
        return self.conn.execute(select(func.min(o.c.created_at)).where(
            o.c.case_id == case_id, o.c.kind == kind, o.c.recipient_group == "ice", o.c.acknowledged_at.is_(None))).scalar()

    # --- reports ---------------------------------------------------------------------

    def cases_opened_before(self, end: datetime) -> list[Case]:
        return [_case_from_row(r) for r in self.conn.execute(
            self._case_select().where(t.cases.c.opened_at < end).order_by(t.cases.c.case_id)).mappings()]

    def detainers_received_between(self, start: datetime, end: datetime) -> list[RowMapping]:
        d = t.detainers
        return list(self.conn.execute(select(d.c.id, d.c.case_id, d.c.form, d.c.warrant_form, d.c.received_at)
                                      .where(d.c.received_at >= start, d.c.received_at < end)).mappings())

    def outbox_created_between(self, start: datetime, end: datetime) -> list[RowMapping]:
        o = t.outbox
        return list(self.conn.execute(select(o).where(o.c.created_at >= start, o.c.created_at < end)
                                      .order_by(o.c.id)).mappings())

    def bookings_first_seen_between(self, start: datetime, end: datetime) -> list[datetime]:
        b = t.bookings
        return list(self.conn.execute(select(b.c.first_seen_at).where(b.c.first_seen_at >= start, b.c.first_seen_at < end)).scalars())

    def roster_history(self) -> list[RosterEntry]:
        return [_roster_entry(r) for r in self.conn.execute(select(t.roster).order_by(t.roster.c.id)).mappings()]

    # --- roster ----------------------------------------------------------------------

    def roster_entries(self, badge: str) -> list[RosterEntry]:
        rows = self.conn.execute(select(t.roster).where(t.roster.c.badge == badge).order_by(t.roster.c.id)).mappings()
        return [_roster_entry(r) for r in rows]

    def roster_current(self) -> list[RosterEntry]:
        rows = self.conn.execute(select(t.roster).where(t.roster.c.valid_to.is_(None)).order_by(t.roster.c.badge)).mappings()
        return [_roster_entry(r) for r in rows]

    def roster_replace(self, entries: Iterable[RosterEntry], *, now: datetime, actor: str, source: str, file_sha256: str) -> dict[str, list[str]]:
        """Replace the roster as a whole. Unchanged lines keep their row (and so
        their history); changed or removed lines are closed, never deleted."""
        entries = list(entries)
        load_id = self.conn.execute(insert(t.roster_loads).values(
            loaded_at=now, actor=actor, source=source, file_sha256=file_sha256, officers=len(entries))).inserted_primary_key[0]
        current = {e.badge: e for e in self.roster_current()}
        incoming = {e.badge: e for e in entries}
        changes: dict[str, list[str]] = {"added": [], "changed": [], "removed": [], "unchanged": []}
        for badge, old in current.items():
            new = incoming.get(badge)
            if new is not None and _same_line(old, new):
                changes["unchanged"].append(badge)
                continue
            self.conn.execute(update(t.roster).where(t.roster.c.badge == badge, t.roster.c.valid_to.is_(None))
                              .values(valid_to=now, ended_by_load_id=load_id))
            changes["removed" if new is None else "changed"].append(badge)
        for badge, new in incoming.items():
            if badge in current and badge in changes["unchanged"]:
                continue
            if badge not in current:
                changes["added"].append(badge)
            self.conn.execute(insert(t.roster).values(
                badge=badge, name=new.name, certified_on=new.certified_on, expires_on=new.expires_on,
                facility=new.facility, valid_from=now, load_id=load_id))
        return changes


def _same_line(a: RosterEntry, b: RosterEntry) -> bool:
    return (a.name, a.certified_on, a.expires_on, a.facility) == (b.name, b.certified_on, b.expires_on, b.facility)


def _roster_entry(r: RowMapping) -> RosterEntry:
    return RosterEntry(badge=r["badge"], name=r["name"], certified_on=r["certified_on"], expires_on=r["expires_on"],
                       facility=r["facility"], valid_from=r["valid_from"], valid_to=r["valid_to"])


_CASE_FIELDS = (
    "status_reason", "release_authorized_at", "release_reason", "t0", "anchor_rule", "deadline_at",
    "release_order_at", "hold_authorized", "hold_started_at", "no_hold_reason", "served_at", "served_by",
    "service_event_id", "copy_served_at", "copy_served_by", "copy_language", "expected_release_at", "lifted_at",
    "release_ordered_at", "release_order_reason", "supervisors_paged_at", "overdue_alerted_at", "released_at",
    "transferred_at", "transferred_to", "closed_at",
)


SAVED_STATE = (*_CASE_FIELDS, "status", "last_reminder_mark_s", "next_due_at")


def saved_state(case: Case, policy: Policy) -> dict[str, Any]:
    """What saving the case would store (comparable with `cases_for_update`'s)."""
    values = _case_values(case, policy, None)
    del values["updated_at"], values["mirror_pending"]  # bookkeeping of the write, not the case's state
    return values


_SAVE_CASE = update(t.cases).where(t.cases.c.case_id == bindparam("b_case_id"), t.cases.c.version == bindparam("b_version"))


@dataclass(frozen=True)
class AuditEntry:
    case_id: str | None
    at: datetime
    actor: str
    source_event_id: str | None
    transition: Transition


def _case_values(case: Case, policy: Policy, now: datetime | None) -> dict[str, Any]:
    values = {name: getattr(case, name) for name in _CASE_FIELDS}
    values["status"] = str(case.status)
    values["last_reminder_mark_s"] = None if case.last_reminder_mark is None else int(case.last_reminder_mark.total_seconds())
    values["next_due_at"] = case.next_due_at(policy) if case.is_open else None
    values["updated_at"] = now
    values["mirror_pending"] = True  # every change is news to the case's run until it has seen it
    return values


def _case_from_row(r: RowMapping) -> Case:
    detainer = Detainer(
        a_number=r["d_a_number"], ice_event_number=r["d_ice_event_number"], form=DetainerForm(r["d_form"]),
        requests_custody=r["d_requests_custody"], issuing_office=r["d_issuing_office"], issued_at=r["d_issued_at"],
        received_at=r["d_received_at"],
        warrant_form=WarrantForm(r["d_warrant_form"]) if r["d_warrant_form"] else None,
        warrant_number=r["d_warrant_number"], identity_verified=r["d_identity_verified"],
        subject_name=r["d_subject_name"], subject_dob=r["d_subject_dob"], event_id=r["d_event_id"])
    values = {name: r[name] for name in _CASE_FIELDS}
    mark = r["last_reminder_mark_s"]
    return Case(case_id=r["case_id"], booking_number=r["booking_number"], facility=r["facility"],
                status=Status(r["status"]), opened_at=r["opened_at"], detainer=detainer, version=r["version"],
                last_reminder_mark=None if mark is None else timedelta(seconds=mark), **values)
