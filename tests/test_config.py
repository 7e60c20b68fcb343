"""Config layering and validation: defaults < YAML < environment, errors name key and value."""
import pytest

from eucadb.config import load, update_file
from eucadb.errors import ConfigError


def test_defaults_file_and_env_layer_in_order(home, monkeypatch):
    home.mkdir()
    (home / "eucadb.yaml").write_text("loop:\n  interval: 2\nserve:\n  port: 9000\n")
    monkeypatch.setenv("EUCADB_SERVE_PORT", "9100")
    cfg = load()
    assert cfg["lease.ttl"] == 30.0            # default
    assert cfg["loop.interval"] == 2.0         # file
    assert cfg["serve.port"] == 9100           # environment beats file
    assert cfg.store_url == f"sqlite:///{home / 'store.db'}"


@pytest.mark.parametrize("text, fragment", [
    ("serve:\n  port: 70000\n", "serve.port=70000 is not allowed"),
    ("serve:\n  port: abc\n", "serve.port='abc' is not a valid int"),
    ("serve:\n  prot: 1\n", "did you mean serve.port"),
    ("store:\n  url: mysql://x\n", "sqlite:// or postgresql://"),
    ("[1, 2]\n", "expected a mapping"),
    ("a: [\n", "not valid YAML"),
    ("loop:\n  interval: 25\n", "must not exceed lease.ttl"),
    ("serve:\n  tls: yes\n", "serve.tls=True is not allowed; expected 'off'"),
    ("serve:\n  tls_cert: /x.pem\n", "serve.tls_cert and serve.tls_key go together"),
    ("serve:\n  tls: auto\n  tls_cert: /x.pem\n  tls_key: /x.key\n", "serve.tls=auto issues its own"),
    ("log:\n  max_bytes: 0\n", "log.max_bytes=0 is not allowed"),
])
def test_bad_file_values_are_named(home, text, fragment):
    home.mkdir()
    (home / "eucadb.yaml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load()
    assert fragment in str(err.value)


def test_bad_environment_value_is_named(home, monkeypatch):
    monkeypatch.setenv("EUCADB_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match="environment EUCADB_LOG_LEVEL: log.level='LOUD'"):
        load()


def test_update_file_round_trips_and_is_private(home):
    cfg = load()
    update_file(cfg, {"cloud.endpoint_url": "http://127.0.0.1:5999"})
    assert load()["cloud.endpoint_url"] == "http://127.0.0.1:5999"
    assert (cfg.path.stat().st_mode & 0o777) == 0o600
    update_file(cfg, {"cloud.endpoint_url": None})
    assert load()["cloud.endpoint_url"] is None
