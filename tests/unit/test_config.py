"""Both databases move to PostgreSQL by configuration alone; a bad URL is
refused at start, naming the variable."""
import pytest

from custody.config import ConfigError, Settings


def settings(**env):
    return Settings.from_env({"CUSTODY_HOME": "/srv/custody", **env})


def test_sqlite_everywhere_by_default():
    s = settings()
    assert s.database_url == "sqlite:////srv/custody/custody.db"
    assert s.prefect_database_url is None
    assert "PREFECT_SERVER_DATABASE_CONNECTION_URL" not in s.prefect_env()


def test_the_prefect_server_gets_its_postgresql_database_through_asyncpg():
    for given in ("postgresql://prefect:s3cret@db:5433/prefect", "postgresql+psycopg://prefect:s3cret@db:5433/prefect",
                  "postgresql+asyncpg://prefect:s3cret@db:5433/prefect"):
        s = settings(CUSTODY_DATABASE_URL="postgresql://custody@db/custody", CUSTODY_PREFECT_DATABASE_URL=given)
        env = s.prefect_env()
        assert env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == "postgresql+asyncpg://prefect:s3cret@db:5433/prefect"
        assert env["CUSTODY_DATABASE_URL"] == "postgresql://custody@db/custody"


@pytest.mark.parametrize("name, value, says", [
    ("CUSTODY_DATABASE_URL", "not a url", "not a database URL"),
    ("CUSTODY_DATABASE_URL", "mysql://u@h/db", "'mysql' is not supported"),
    ("CUSTODY_PREFECT_DATABASE_URL", "sqlite:///x.db", "only PostgreSQL"),
    ("CUSTODY_PREFECT_DATABASE_URL", "::", "not a database URL"),
])
def test_a_bad_database_url_is_refused_naming_the_variable(name, value, says):
    with pytest.raises(ConfigError, match=name) as refused:
        settings(**{name: value})
    assert says in str(refused.value)


def test_the_demo_never_uses_the_real_databases(tmp_path, monkeypatch):
    from custody.cli import demo_settings

    monkeypatch.setenv("CUSTODY_DATABASE_URL", "postgresql://custody@db/custody")
    monkeypatch.setenv("CUSTODY_PREFECT_DATABASE_URL", "postgresql://prefect@db/prefect")
    monkeypatch.delenv("CUSTODY_DEMO_DATABASE_URL", raising=False)
    monkeypatch.delenv("CUSTODY_DEMO_PREFECT_DATABASE_URL", raising=False)
    real = Settings.from_env({"CUSTODY_HOME": str(tmp_path)})
    demo = demo_settings(real)
    assert demo.database_url == f"sqlite:///{tmp_path / 'demo' / 'custody.db'}"
    assert demo.prefect_database_url is None
    monkeypatch.setenv("CUSTODY_DEMO_DATABASE_URL", "postgresql://custody@db/demo")
    monkeypatch.setenv("CUSTODY_DEMO_PREFECT_DATABASE_URL", "postgresql://prefect@db/demo_prefect")
    demo = demo_settings(real)
    assert demo.database_url == "postgresql://custody@db/demo"
    assert demo.prefect_env()["PREFECT_SERVER_DATABASE_CONNECTION_URL"] == "postgresql+asyncpg://prefect@db/demo_prefect"


def test_the_prefect_server_does_not_re_read_suspended_runs_for_pause_timeouts_none_has(monkeypatch):
    import ast
    from pathlib import Path

    from prefect.settings.models.root import Settings as PrefectSettings
    monkeypatch.delenv("PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED", raising=False)
    for key, value in settings().prefect_env().items():
        monkeypatch.setenv(key, value)
    assert PrefectSettings().server.services.pause_expirations.enabled is False  # the name is Prefect's own
    # ...which is only right while no case run suspends with a timeout.
    tree = ast.parse((Path(__file__).parents[2] / "flows" / "case.py").read_text())
    suspends = [call for call in ast.walk(tree) if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "suspend_flow_run"]
    assert suspends and all(any(k.arg == "timeout" and isinstance(k.value, ast.Constant) and k.value.value is None
                                for k in call.keywords) for call in suspends)


def test_the_intake_lock_wait_is_unset_by_default_and_read_in_seconds():
    assert settings().intake_lock_timeout is None
    assert settings(CUSTODY_INTAKE_LOCK_TIMEOUT=" 2.5 ").intake_lock_timeout == 2.5


@pytest.mark.parametrize("value", ["soon", "0", "-1", "0.05", "601", "nan", "inf", "5s"])
def test_a_bad_lock_wait_is_refused_naming_the_variable(value):
    with pytest.raises(ConfigError, match="^CUSTODY_INTAKE_LOCK_TIMEOUT: .* seconds from 0.1 to 600"):
        settings(CUSTODY_INTAKE_LOCK_TIMEOUT=value)
