"""Prefect, through its client: each case's run kept in step with the case
(runs, mirror, sync, bridge), what the UI shows (artifacts) and the officers'
forms read from it (form_reader). Nothing here decides a legal outcome."""
