"""The outside world, each module named for what it wraps: Apprise (the
notification relay), matplotlib (the report's charts) and Prefect (`prefect/`:
the case runs, their mirror of each case, the UI's artifacts and the officer's
forms)."""
