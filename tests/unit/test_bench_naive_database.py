"""The naive peer of the open-cases benchmark (bench/open_cases.py) runs its
Prefect server on PostgreSQL when the run has a cluster: a SQLite-backed server
stopped answering with 50 live runs, so on SQLite the peer is judged by its
database's limits. The environment it is given must be one Prefect 3.9 reads."""
import pytest
from prefect.settings.models.server.database import ServerDatabaseSettings

from bench.__main__ import FULL, SMALL, choose_sizes, main
from bench.open_cases import prefect_server_database


def test_with_a_cluster_the_peer_s_server_uses_its_database_through_asyncpg(monkeypatch):
    database, env = prefect_server_database("postgresql+psycopg://postgres@127.0.0.1:5433/open_naive_prefect")

    assert database == "postgresql"
    assert env == {"PREFECT_SERVER_DATABASE_CONNECTION_URL": "postgresql+asyncpg://postgres@127.0.0.1:5433/open_naive_prefect"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert ServerDatabaseSettings().connection_url.get_secret_value() == env["PREFECT_SERVER_DATABASE_CONNECTION_URL"]


def test_a_password_survives_the_change_of_driver():
    _, env = prefect_server_database("postgresql+psycopg://bench:s3cret@127.0.0.1:5433/db")
    assert env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == "postgresql+asyncpg://bench:s3cret@127.0.0.1:5433/db"


def test_without_a_cluster_the_peer_s_server_keeps_prefect_s_default_sqlite():
    assert prefect_server_database(None) == ("sqlite", {})


def test_a_url_that_is_not_postgresql_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="url must be a PostgreSQL URL, not 'sqlite'"):
        prefect_server_database("sqlite:////tmp/x.db")


def test_naive_runs_overrides_only_the_peer_s_size():
    sizes = choose_sizes(small=True, naive_runs=50)
    assert sizes["naive_n"] == 50
    assert {k: v for k, v in sizes.items() if k != "naive_n"} == {k: v for k, v in SMALL.items() if k != "naive_n"}
    assert SMALL["naive_n"] == 6  # the defaults are not changed by an override
    assert choose_sizes(small=False) == FULL
    assert choose_sizes(small=True) == SMALL


def test_naive_runs_below_one_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        main(["--small", "--only", "open_cases", "--naive-runs", "0", "--no-pg", "--work", "/nonexistent-never-made"])
    assert "--naive-runs: must be at least 1, not 0" in capsys.readouterr().err


def test_the_sqlite_request_limit_the_report_explains_the_hang_by_is_prefect_s():
    """The report says a SQLite-backed server admits SQLITE_REQUEST_LIMIT requests
    at once, websockets included: if a Prefect upgrade changes that, say so here."""
    import inspect

    from prefect.server.api import server

    from bench.open_cases import SQLITE_REQUEST_LIMIT

    assert f"add_middleware(RequestLimitMiddleware, limit={SQLITE_REQUEST_LIMIT})" in inspect.getsource(server.create_app)
    call = inspect.getsource(server.RequestLimitMiddleware.__call__)
    assert "scope" in call and "websocket" not in call and "http" not in call  # every scope waits, a websocket for its whole life
