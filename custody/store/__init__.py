"""Persistence: the SQL tables, the engine, the unit of work and the migrations
beside them. The domain's objects go in and come out; no rule is decided here."""
