"""The custody domain: cases, detainers, the roster, the jurisdiction policy and
the legal clock, plus (beside it) the SQL mapping, unit of work and migrations.

The domain modules (clock, durations, policy, domain, rules, events, notices)
import nothing from Prefect, SQLAlchemy, Apprise or the entry points.
"""
