"""The custody domain alone: cases, detainers, the roster, the jurisdiction
policy, the legal rules and clock, events and notices.

Nothing here imports beyond the standard library and pydantic (tests/unit/
test_domain_imports.py holds it to that): the database, Prefect, Apprise and
the entry points live in `custody/`, and depend on this, never the reverse.
"""
