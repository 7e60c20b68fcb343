"""Layered configuration: built-in defaults < YAML file < `EUCADB_*` environment (docs/architecture.md §11).

The file is `$EUCADB_HOME/eucadb.yaml` unless `--config` names another. Keys are declared once, as
data; every layer is validated at load and an error names the key, the bad value and what is allowed.
Properties (what the cloud admin tunes at run time) live in the store, not here: this file holds only
what a process needs before it can reach the store and the cloud.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping
from urllib.parse import urlparse

import yaml

from eucadb.errors import ConfigError

ENV_PREFIX = "EUCADB_"
CONFIG_FILE = "eucadb.yaml"


def _url(value: str) -> str:
    if value == "default":  # boto3's own endpoints (a real AWS account)
        return value
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("an http(s) URL such as http://127.0.0.1:5000, or 'default' for boto3's endpoints")
    return value


def _store_url(value: str) -> str:
    if not (value.startswith("sqlite") or value.startswith("postgresql")):
        raise ValueError("an SQLAlchemy URL starting with sqlite:// or postgresql://")
    return value


def _positive(value: float) -> float:
    if value <= 0:
        raise ValueError("a number greater than 0")
    return value


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("a TCP port between 1 and 65535")
    return value


def _loopback_cidr(value: str) -> str:
    import ipaddress
    try:
        net = ipaddress.ip_network(value)
    except ValueError:
        raise ValueError("an IPv4 CIDR such as 127.80.0.0/16") from None
    if net.version != 4 or not net.subnet_of(ipaddress.ip_network("127.0.0.0/8")) or net.prefixlen != 16:
        raise ValueError("a /16 inside 127.0.0.0/8 (the embedded cloud is loopback-only), e.g. 127.80.0.0/16")
    return str(net)


def _level(value: str) -> str:
    allowed = ("DEBUG", "INFO", "WARNING", "ERROR")
    if value.upper() not in allowed:
        raise ValueError("one of " + ", ".join(allowed))
    return value.upper()


def _group(value: str) -> str:
    import grp
    try:
        grp.getgrnam(value)
    except KeyError:
        raise ValueError("the name of an existing group (see /etc/group)") from None
    return value


def _tls(value: str) -> str:
    if value not in ("off", "auto"):
        raise ValueError("'off' (plain HTTP, or TLS with serve.tls_cert and serve.tls_key) or 'auto' "
                         "(a certificate from the deployment's CA)")
    return value


@dataclass(frozen=True)
class Key:
    name: str
    type: type
    default: Any
    doc: str
    check: Callable[[Any], Any] | None = None
    secret: bool = False


KEYS: tuple[Key, ...] = (
    Key("store.url", str, None, "SQLAlchemy URL of the local store; default sqlite under $EUCADB_HOME", _store_url),
    Key("cloud.endpoint_url", str, None, "cloud API endpoint URL; 'default' = boto3's endpoints; empty = no cloud configured", _url),
    Key("cloud.region", str, "us-east-1", "cloud region name (the embedded cloud serves us-east-1)"),
    Key("cloud.access_key_id", str, None, "cloud access key; empty = boto3's usual credential chain"),
    Key("cloud.secret_access_key", str, None, "cloud secret key", secret=True),
    Key("cloud.data_dir", str, None, "embedded cloud: where instances and volumes live (must be traversable "
        "by the instance user); default $EUCADB_HOME/cloud, or /var/lib/eucadb when running as root"),
    Key("cloud.vpc_cidr", str, "127.80.0.0/16", "embedded cloud: the VPC; one /24 subnet per zone "
        "(x.y.1.0/24, x.y.2.0/24, ...); instance IPs are loopback addresses", _loopback_cidr),
    Key("cloud.zones", str, None, "embedded cloud: comma-separated zones that get a subnet; empty = all"),
    Key("cloud.metadata_port", int, 8775, "embedded cloud: port of each instance's metadata service "
        "(bound to the instance's own private IP)", _port),
    Key("cloud.instance_user", str, "postgres", "embedded cloud: user realized instances run as when "
        "eucadb runs as root (PostgreSQL refuses root)"),
    Key("cloud.instance_python", str, "/usr/bin/python3", "embedded cloud: interpreter the local image's "
        "runtime is built from (must be readable by the instance user)"),
    Key("cloud.runtime_dir", str, None, "embedded cloud: cache of built image runtimes (content-keyed, "
        "safe to share between clouds); default <cloud data dir>/runtimes"),
    Key("cloud.poll_interval", float, 1.0, "embedded cloud: seconds between realizer polls", _positive),
    Key("cloud.stop_timeout", float, 10.0, "embedded cloud: seconds an instance gets after SIGTERM "
        "before SIGKILL", _positive),
    Key("loop.interval", float, 5.0, "seconds between reconcile cycles", _positive),
    Key("lease.ttl", float, 30.0, "seconds a leader lease stays valid without renewal", _positive),
    Key("retry.timeout", float, 10.0, "deadline in seconds for one retried cloud/DB call", _positive),
    Key("serve.host", str, "127.0.0.1", "address `eucadb serve` listens on"),
    Key("serve.port", int, 8773, "port `eucadb serve` listens on", _port),
    Key("serve.region", str, None, "region of the APIs' SigV4 credential scope (requests signed for "
        "another are refused); default cloud.region"),
    Key("serve.tls", str, "off", "'auto' = serve HTTPS with a certificate the deployment's CA issues for "
        "serve.host; 'off' = plain HTTP unless serve.tls_cert and serve.tls_key are set", _tls),
    Key("serve.tls_cert", str, None, "PEM certificate chain `eucadb serve` presents (with serve.tls_key)"),
    Key("serve.tls_key", str, None, "PEM private key of serve.tls_cert"),
    Key("cloudwatch.evaluation_interval", float, 60.0, "seconds between alarm evaluations (AWS: every minute)",
        _positive),
    Key("cloudwatch.action_interval", float, 5.0, "seconds between the leader's passes over the alarm-action "
        "outbox (a state change's actions run within this)", _positive),
    Key("files.group", str, None, "group that may read the store, logs and pid files (0640, dirs 0750); "
        "empty = owner only (0600/0700); secret.key stays 0600", _group),
    Key("log.level", str, "INFO", "logging level", _level),
    Key("log.max_bytes", int, 10 * 1024 * 1024, "size at which serve.log and the embedded cloud daemons' logs are rotated", _positive),
    Key("log.backups", int, 5, "rotated logs kept (serve.log.1 … serve.log.N)", _positive),
)
KEYS_BY_NAME = {k.name: k for k in KEYS}


def default_home() -> Path:
    return Path(os.environ.get("EUCADB_HOME") or Path.home() / ".eucadb")


def _coerce(key: Key, raw: Any, source: str) -> Any:
    if raw is None or raw == "":
        return key.default
    try:
        if key.type is bool:
            value = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
        elif key.type in (int, float) and isinstance(raw, bool):
            raise ValueError
        else:
            value = key.type(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key.name}={raw!r} is not a valid {key.type.__name__}") from None
    if key.check:
        try:
            value = key.check(value)
        except ValueError as exc:
            raise ConfigError(f"{source}: {key.name}={raw!r} is not allowed; expected {exc}") from None
    return value


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in data.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            flat.update(_flatten(v, name + "."))
        else:
            flat[name] = v
    return flat


def _unknown(name: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(name, KEYS_BY_NAME, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known keys: {', '.join(KEYS_BY_NAME)}"
    return ConfigError(f"{source}: unknown key {name!r}{hint}")


@dataclass(frozen=True)
class Config:
    home: Path
    path: Path
    values: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def store_url(self) -> str:
        return self.values["store.url"] or f"sqlite:///{self.home / 'store.db'}"

    @property
    def serve_region(self) -> str:
        return self.values["serve.region"] or self.values["cloud.region"]

    @property
    def cloud_dir(self) -> Path:
        """Where the embedded cloud keeps its control-plane state (moto, pids, logs)."""
        return self.home / "cloud"

    @property
    def cloud_data_dir(self) -> Path:
        if self.values["cloud.data_dir"]:
            return Path(self.values["cloud.data_dir"])
        if os.geteuid() == 0:
            # root's home is mode 700; realized instances run as `postgres` and must traverse this.
            import hashlib

            tag = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:10]
            return Path("/var/lib/eucadb") / tag
        return self.cloud_dir


def load(path: str | os.PathLike | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate the three layers. Raises ConfigError naming the offending key."""
    env = os.environ if env is None else env
    home = Path(env.get("EUCADB_HOME") or Path.home() / ".eucadb").expanduser()
    cfg_path = Path(path or env.get("EUCADB_CONFIG") or home / CONFIG_FILE).expanduser()
    values = {k.name: k.default for k in KEYS}

    if cfg_path.exists():
        try:
            data = yaml.safe_load(cfg_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{cfg_path}: not valid YAML ({exc.__class__.__name__})") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cfg_path}: expected a mapping of keys, got {type(data).__name__}")
        for name, raw in _flatten(data).items():
            if name not in KEYS_BY_NAME:
                raise _unknown(name, str(cfg_path))
            values[name] = _coerce(KEYS_BY_NAME[name], raw, str(cfg_path))
    elif path:
        raise ConfigError(f"--config {cfg_path}: no such file")

    for key in KEYS:
        env_name = ENV_PREFIX + key.name.upper().replace(".", "_")
        if env_name in env:
            values[key.name] = _coerce(key, env[env_name], f"environment {env_name}")

    if values["loop.interval"] + 2 * values["retry.timeout"] > values["lease.ttl"]:
        raise ConfigError(
            "loop.interval + 2 × retry.timeout must not exceed lease.ttl "
            f"({values['loop.interval']} + 2 × {values['retry.timeout']} > {values['lease.ttl']}): "
            "a leader could otherwise lose its lease in the middle of a cycle")
    if bool(values["serve.tls_cert"]) != bool(values["serve.tls_key"]):
        raise ConfigError("serve.tls_cert and serve.tls_key go together: set both (or neither)")
    if values["serve.tls_cert"] and values["serve.tls"] == "auto":
        raise ConfigError("serve.tls=auto issues its own certificate: unset serve.tls_cert and serve.tls_key, "
                          "or set serve.tls=off to serve the given pair")
    return Config(home=home, path=cfg_path, values=values)


def update_file(config: Config, changes: Mapping[str, Any]) -> None:
    """Write `changes` into the YAML file (used by `eucadb cloud up` to record its endpoint)."""
    for name in changes:
        if name not in KEYS_BY_NAME:
            raise _unknown(name, "update")
    data: dict[str, Any] = {}
    if config.path.exists():
        data = yaml.safe_load(config.path.read_text()) or {}
    for name, value in changes.items():
        section, _, leaf = name.partition(".")
        if value is None:
            data.get(section, {}).pop(leaf, None)
        else:
            data.setdefault(section, {})[leaf] = value
    data = {k: v for k, v in data.items() if v}
    config.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = config.path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=True))
    os.chmod(tmp, 0o600)
    os.replace(tmp, config.path)
