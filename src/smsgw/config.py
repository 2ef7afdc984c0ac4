"""Settings: one typed, frozen object, read once at start and passed explicitly.

Sources, later ones winning:

1. defaults (the dataclasses below);
2. a TOML file: the ``path`` argument, else ``$SMSGW_CONFIG``, else ``./smsgw.toml`` if it
   exists (see ``smsgw.example.toml`` for every setting, documented);
3. ``SMSGW_<SECTION>_<KEY>`` environment variables for the scalar sections (``http``,
   ``database``, ``webhooks``, ``auth``, ``engine``, and the scalar keys of ``simulator``),
   e.g. ``SMSGW_HTTP_PORT=8443``. Booleans
   read true/false/1/0/yes/no; lists are comma-separated; an empty value for an optional
   setting unsets it. Other ``SMSGW_*`` variables are ignored (they belong to other tools).

A typo must not be silently ignored: an unknown key in the file, a value of the wrong type or
out of range raises ``ConfigError(name, reason)`` with the dotted name of the setting, e.g.
``http.port`` or ``connectors[1].tps`` (array indexes count from 0). Reasons never quote a
value that may hold a secret (passwords, database URLs). Relative file paths (TLS) are read
from the working directory.

Field types drive parsing (this module does not use postponed annotations, so each
dataclass field's ``type`` is the real type); range rules sit beside each field as checks.
"""

import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar, get_args, get_origin
from urllib.parse import urlsplit

from smsgw.domain.netaddr import parse_network
from smsgw.domain.pricing import Rate
from smsgw.errors import ConfigError
from smsgw.smpp.constants import CommandStatus

T = TypeVar("T")
Check = Callable[[Any], str | None]  # returns the reason a value is bad, or None


def _setting(default: T, *checks: Check) -> T:
    return field(default=default, metadata={"checks": checks})


def _required(*checks: Check) -> Any:
    return field(metadata={"checks": checks})


# checks ---------------------------------------------------------------------------------


def _between(low: int, high: int) -> Check:
    return lambda value: None if low <= value <= high else f"must be between {low} and {high}"


def _at_least(low: float) -> Check:
    return lambda value: None if value >= low else f"must be at least {low}"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _not_empty(value: str | tuple[object, ...]) -> str | None:
    return None if value else "must not be empty"


def _each_at_least_zero(values: tuple[float, ...]) -> str | None:
    return None if all(value >= 0 for value in values) else "every entry must be at least 0"


def _at_most_chars(limit: int) -> Check:
    return lambda value: None if len(value) <= limit else f"must be at most {limit} characters"


def _existing_file(value: str | None) -> str | None:
    return None if value is None or Path(value).is_file() else "names no readable file"


_DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres", "memory")


def _database_scheme(value: str) -> str | None:
    # The URL may carry a password: name the rule, never the value.
    if urlsplit(value).scheme in _DATABASE_SCHEMES:
        return None
    return f"scheme must be one of {', '.join(_DATABASE_SCHEMES)}"


_CANONICAL_PREFIX = re.compile(r"(0|\+)[0-9]*")


def _canonical_prefix(value: str) -> str | None:
    """Numbers are matched in canonical form (09xxxxxxxx or +<E.164>), so must prefixes."""
    if value and not _CANONICAL_PREFIX.fullmatch(value):
        return "must be empty, or 0 or + followed by digits (numbers are 09... or +<E.164>)"
    if value.startswith("+886"):
        return "Taiwan numbers are canonical as 09..., use a prefix starting with 0"
    return None


# conversion -----------------------------------------------------------------------------


class _InvalidError(Exception):
    """A value is bad; the message is the reason, without the value."""


def _to_str(value: object) -> str:
    if not isinstance(value, str):
        raise _InvalidError("must be a string")
    return value


def _to_int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _InvalidError("must be an integer")
    return value


def _to_float(value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise _InvalidError("must be a finite number")
    return float(value)


def _to_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise _InvalidError("must be true or false")
    return value


def _to_floats(value: object) -> tuple[float, ...]:
    return tuple(_to_float(item) for item in _to_list(value))


def _to_networks(value: object) -> tuple[str, ...]:
    """Addresses or CIDR blocks, normalised (an address becomes a /32 or /128 block)."""
    networks: list[str] = []
    for index, item in enumerate(_to_list(value)):
        try:
            networks.append(str(parse_network(_to_str(item))))
        except (ValueError, _InvalidError) as error:
            raise _InvalidError(f"entry {index}: {error}") from None
    return tuple(networks)


def _to_strs(value: object) -> tuple[str, ...]:
    return tuple(_to_str(item) for item in _to_list(value))


def _to_list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise _InvalidError("must be a list")
    return value


# sections -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpSettings:
    host: str = _setting("127.0.0.1", _not_empty)
    port: int = _setting(8080, _between(1, 65535))
    tls_cert: str | None = _setting(None, _existing_file)
    tls_key: str | None = _setting(None, _existing_file)
    # Addresses or CIDR blocks, validated and normalised: "192.0.2.1" becomes "192.0.2.1/32".
    trusted_proxies: tuple[str, ...] = field(default=(), metadata={"convert": _to_networks})
    max_body_bytes: int = _setting(65536, _positive)
    # Seconds a client has, from connecting or from a request's first byte, to send the whole
    # request; then it is answered 408 (or, having sent nothing, disconnected).
    request_timeout_s: float = _setting(10.0, _positive)
    # API processes sharing the port; more than one pays only with a core to spare.
    workers: int = _setting(1, _between(1, 64))


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = _setting("sqlite:///smsgw.db", _database_scheme)

    @property
    def shown_url(self) -> str:
        """The URL fit for logs and terminals: any password replaced by ``***``."""
        return _redacted_url(self.url)

    def __repr__(self) -> str:
        return f"DatabaseSettings(url={self.shown_url!r})"


def _redacted_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    allow_private_networks: bool = False
    timeout_s: float = _setting(10.0, _positive)
    retry_delays_s: tuple[float, ...] = _setting(
        (30.0, 120.0, 600.0), _not_empty, _each_at_least_zero
    )


@dataclass(frozen=True, slots=True)
class AuthSettings:
    lockout_failures: int = _setting(10, _at_least(1))
    lockout_window_s: float = _setting(300.0, _positive)
    lockout_s: float = _setting(900.0, _positive)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    validity_s: float = _setting(86400.0, _positive)
    receipt_timeout_s: float = _setting(259200.0, _positive)
    # Seconds a claimed recipient stays with its claimer before another process (or the
    # restarted one) may claim it again: how long a crash delays what was in flight.
    claim_lease_s: float = _setting(120.0, _positive)
    # `smsgw serve` runs the engine as a child process (`smsgw engine`) beside the API, so the
    # two use two cores instead of sharing one event loop and one GIL. Off by default: on
    # SQLite the two processes then wait on each other's write lock (see the README).
    separate_process: bool = False
    # Seconds the dispatcher waits between looks for due work when nothing woke it. An engine
    # in its own process is never woken by an accept, so this is its pick-up delay.
    poll_s: float = _setting(0.2, _positive)
    # `smsgw engine` serves its Prometheus metrics on 127.0.0.1 at this port; 0: not served.
    metrics_port: int = _setting(0, _between(0, 65535))
    # With the engine apart, `smsgw serve` runs the callback worker in a process of its own
    # (`smsgw engine --part callbacks`) beside the delivery engine (`--part delivery`): one
    # GIL each. It serves its metrics (callback outcomes) at this port; 0: not served.
    callbacks_process: bool = True
    callbacks_metrics_port: int = _setting(0, _between(0, 65535))


@dataclass(frozen=True, slots=True)
class ConnectorSettings:
    """One SMSC link; string limits are SMPP 3.4's C-Octet String sizes less the NUL."""

    name: str = _required(_not_empty)
    kind: Literal["simulator", "smpp"] = "simulator"
    host: str = _setting("127.0.0.1", _not_empty)
    port: int = _setting(2775, _between(1, 65535))
    system_id: str = _setting("smsgw", _at_most_chars(15))
    password: str = field(default="", repr=False, metadata={"checks": (_at_most_chars(8),)})
    system_type: str = _setting("", _at_most_chars(12))
    source_addr: str = _setting("", _at_most_chars(20))
    source_ton: int = _setting(5, _between(0, 255))
    source_npi: int = _setting(0, _between(0, 255))
    bind: Literal["transceiver", "transmitter+receiver"] = "transceiver"
    tps: float = _setting(100.0, _positive)
    window: int = _setting(10, _at_least(1))
    enquire_link_s: float = _setting(30.0, _positive)
    national_numbers: bool = False
    response_timeout_s: float = _setting(10.0, _positive)
    long_form: Literal["udh", "sar", "payload"] = "udh"
    reconnect_max_s: float = _setting(30.0, _positive)
    throttle_backoff_s: float = _setting(1.0, _positive)
    registered_delivery: int = _setting(1, _between(0, 255))


@dataclass(frozen=True, slots=True)
class RouteSettings:
    prefix: str = _required(_canonical_prefix)
    connector: str = _required(_not_empty)


@dataclass(frozen=True, slots=True)
class _RateTable:
    prefix: str = _required(_canonical_prefix)
    points_per_segment: int = _setting(1, _at_least(0))


DEFAULT_CONNECTOR = ConnectorSettings(name="sim", kind="simulator")


# Receipt outcomes the simulator may pick: the final states of the SMPP 3.4 text receipt.
RECEIPT_OUTCOMES: tuple[str, ...] = (
    "DELIVRD",
    "UNDELIV",
    "EXPIRED",
    "DELETED",
    "REJECTD",
    "UNKNOWN",
    "ACCEPTD",
)


def _outcome(value: str | None) -> str | None:
    if value is None or value in RECEIPT_OUTCOMES:
        return None
    return f"must be one of {', '.join(RECEIPT_OUTCOMES)}"


def _status_name(value: str | None) -> str | None:
    if value is None or value in CommandStatus.__members__:
        return None
    return "must be an SMPP command_status name such as ESME_RINVDSTADR"


def _digits(value: str) -> str | None:
    return None if value.isdigit() or not value else "must be digits"


@dataclass(frozen=True, slots=True)
class SimulatorRule:
    """Destinations with this prefix or suffix (SMPP digits, e.g. 8869...) get a fixed fate."""

    suffix: str = _setting("", _digits)
    prefix: str = _setting("", _digits)
    outcome: str | None = _setting(None, _outcome)
    submit_status: str | None = _setting(None, _status_name)


def _to_outcomes(value: object) -> Mapping[str, float]:
    if not isinstance(value, dict) or not value:
        raise _InvalidError("must be a table of outcome = weight with at least one entry")
    weights: dict[str, float] = {}
    for outcome, weight in value.items():
        if outcome not in RECEIPT_OUTCOMES:
            raise _InvalidError(f"{outcome!r} is not one of {', '.join(RECEIPT_OUTCOMES)}")
        weights[outcome] = _to_float(weight)
        if weights[outcome] <= 0:
            raise _InvalidError(f"the weight of {outcome} must be greater than 0")
    return MappingProxyType(weights)


def _to_rules(value: object) -> tuple[SimulatorRule, ...]:
    rules = _array("simulator.rules", value, SimulatorRule)
    for index, rule in enumerate(rules):
        name = f"simulator.rules[{index}]"
        if bool(rule.suffix) == bool(rule.prefix):
            raise ConfigError(f"{name}.suffix", "give exactly one of suffix and prefix")
        if (rule.outcome is None) == (rule.submit_status is None):
            raise ConfigError(f"{name}.outcome", "give exactly one of outcome and submit_status")
    return rules


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """The built-in SMSC simulator (``smsgw simulator``); 0 switches a behaviour off."""

    system_id: str = _setting("smsgw", _not_empty, _at_most_chars(15))
    password: str = field(default="secret", repr=False, metadata={"checks": (_at_most_chars(8),)})
    host: str = _setting("127.0.0.1", _not_empty)
    port: int = _setting(2775, _between(1, 65535))
    control_port: int = _setting(2776, _between(1, 65535))
    receipt_delay_s: float = _setting(1.0, _at_least(0))
    receipt_jitter_s: float = _setting(0.0, _at_least(0))
    outcomes: Mapping[str, float] = field(
        default_factory=lambda: MappingProxyType({"DELIVRD": 1.0}),
        metadata={"convert": _to_outcomes},
    )
    rules: tuple[SimulatorRule, ...] = field(default=(), metadata={"convert": _to_rules})
    throttle_tps: float = _setting(0.0, _at_least(0))
    drop_every_s: float = _setting(0.0, _at_least(0))
    stall_every_s: float = _setting(0.0, _at_least(0))
    stall_s: float = _setting(0.0, _at_least(0))
    garbage_every_s: float = _setting(0.0, _at_least(0))
    duplicate_receipts: bool = False
    early_receipts: bool = False
    seed: int | None = None


def _simulator(simulator: SimulatorSettings) -> SimulatorSettings:
    if (simulator.stall_every_s > 0) != (simulator.stall_s > 0):
        raise ConfigError(
            "simulator.stall_s", "set stall_s and stall_every_s together (or neither)"
        )
    if simulator.stall_s >= simulator.stall_every_s > 0:
        raise ConfigError("simulator.stall_s", "must be less than stall_every_s")
    return simulator


@dataclass(frozen=True)
class Settings:
    http: HttpSettings = field(default_factory=HttpSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    connectors: tuple[ConnectorSettings, ...] = (DEFAULT_CONNECTOR,)
    routes: tuple[RouteSettings, ...] = (RouteSettings(prefix="", connector="sim"),)
    rates: tuple[Rate, ...] = ()
    _connector_by_prefix: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _prefix_lengths: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        taken = {self.http.port: "http.port"}
        for name, port in (
            ("engine.metrics_port", self.engine.metrics_port),
            ("engine.callbacks_metrics_port", self.engine.callbacks_metrics_port),
        ):
            if port and port in taken:
                raise ConfigError(name, f"is {taken[port]} already")
            taken[port] = name
        by_prefix = MappingProxyType({route.prefix: route.connector for route in self.routes})
        object.__setattr__(self, "_connector_by_prefix", by_prefix)
        lengths = tuple(sorted({len(prefix) for prefix in by_prefix}, reverse=True))
        object.__setattr__(self, "_prefix_lengths", lengths)

    def route_for(self, number: str) -> str | None:
        """The connector of the longest route prefix of a canonical number, if any."""
        for length in self._prefix_lengths:  # only the lengths some prefix has, longest first
            if length <= len(number):
                connector = self._connector_by_prefix.get(number[:length])
                if connector is not None:
                    return connector
        return None

    def connector(self, name: str) -> ConnectorSettings:
        """The connector of that name (KeyError if there is none)."""
        for connector in self.connectors:
            if connector.name == name:
                return connector
        raise KeyError(name)


# loading --------------------------------------------------------------------------------


def load_settings(path: str | Path | None, environ: Mapping[str, str]) -> Settings:
    """Defaults, then the TOML file, then ``SMSGW_*`` variables; ConfigError if anything is bad."""
    document = _read_toml(_config_path(path, environ))
    unknown = sorted(document.keys() - _SECTIONS.keys() - _ARRAYS)
    if unknown:
        raise ConfigError(unknown[0], "unknown section")
    connectors = _connectors(document.get("connectors", []))
    return Settings(
        http=_http(_section("http", HttpSettings, document, environ)),
        database=_section("database", DatabaseSettings, document, environ),
        webhooks=_section("webhooks", WebhookSettings, document, environ),
        auth=_section("auth", AuthSettings, document, environ),
        engine=_section("engine", EngineSettings, document, environ),
        simulator=_simulator(_section("simulator", SimulatorSettings, document, environ)),
        connectors=connectors,
        routes=_routes(document.get("routes", []), connectors),
        rates=_rates(document.get("rates", [])),
    )


_SECTIONS: Mapping[str, type] = {
    "http": HttpSettings,
    "database": DatabaseSettings,
    "webhooks": WebhookSettings,
    "auth": AuthSettings,
    "engine": EngineSettings,
    "simulator": SimulatorSettings,
}
_ARRAYS = frozenset({"connectors", "routes", "rates"})


def _config_path(path: str | Path | None, environ: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if environ.get("SMSGW_CONFIG"):
        return Path(environ["SMSGW_CONFIG"])
    default = Path("smsgw.toml")
    return default if default.is_file() else None


def _read_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except OSError as error:
        raise ConfigError(str(path), f"cannot read the file ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), f"not valid TOML: {error}") from None


def _section(name: str, cls: type[T], document: Mapping[str, Any], environ: Mapping[str, str]) -> T:
    table = dict(_table(name, document.get(name, {})))
    sources: dict[str, str] = {}
    for spec in fields(cls):  # type: ignore[arg-type]
        variable = f"SMSGW_{name}_{spec.name}".upper()
        if variable in environ:
            sources[spec.name] = variable
            value = _from_env(f"{name}.{spec.name}", spec, environ[variable], variable)
            if value is _UNSET:
                table.pop(spec.name, None)
            else:
                table[spec.name] = value
    return _build(cls, name, table, sources)


def _http(http: HttpSettings) -> HttpSettings:
    if (http.tls_cert is None) != (http.tls_key is None):
        raise ConfigError("http.tls_key", "tls_cert and tls_key must be set together")
    return http


def _connectors(value: object) -> tuple[ConnectorSettings, ...]:
    connectors = _array("connectors", value, ConnectorSettings)
    seen: set[str] = set()
    for index, connector in enumerate(connectors):
        if connector.name in seen:
            raise ConfigError(f"connectors[{index}].name", "another connector has that name")
        seen.add(connector.name)
    return connectors or (DEFAULT_CONNECTOR,)


def _routes(value: object, connectors: tuple[ConnectorSettings, ...]) -> tuple[RouteSettings, ...]:
    routes = _array("routes", value, RouteSettings)
    names = {connector.name for connector in connectors}
    _reject_duplicate_prefixes("routes", [route.prefix for route in routes])
    for index, route in enumerate(routes):
        if route.connector not in names:
            raise ConfigError(f"routes[{index}].connector", "names no configured connector")
    return routes or (RouteSettings(prefix="", connector=connectors[0].name),)


def _rates(value: object) -> tuple[Rate, ...]:
    tables = _array("rates", value, _RateTable)
    _reject_duplicate_prefixes("rates", [table.prefix for table in tables])
    return tuple(
        Rate(prefix=table.prefix, points_per_segment=table.points_per_segment) for table in tables
    )


def _reject_duplicate_prefixes(name: str, prefixes: list[str]) -> None:
    for index, prefix in enumerate(prefixes):
        if prefix in prefixes[:index]:
            raise ConfigError(f"{name}[{index}].prefix", "another entry has that prefix")


def _array(name: str, value: object, cls: type[T]) -> tuple[T, ...]:
    if not isinstance(value, list):
        raise ConfigError(name, "must be an array of tables ([[...]])")
    return tuple(
        _build(cls, f"{name}[{index}]", _table(f"{name}[{index}]", item), {})
        for index, item in enumerate(value)
    )


def _table(name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(name, "must be a table")
    return value


def _build(cls: type[T], name: str, table: Mapping[str, Any], sources: Mapping[str, str]) -> T:
    specs = {spec.name: spec for spec in fields(cls) if spec.init}  # type: ignore[arg-type]
    for key in table:
        if key not in specs:
            raise ConfigError(f"{name}.{key}", "unknown setting")
    values: dict[str, Any] = {}
    for key, spec in specs.items():
        if key in table:
            values[key] = _value(f"{name}.{key}", spec, table[key], sources.get(key))
        elif spec.default is MISSING and spec.default_factory is MISSING:
            raise ConfigError(f"{name}.{key}", "is required")
    return cls(**values)


def _value(name: str, spec: Field[Any], raw: object, variable: str | None) -> object:
    try:
        convert = spec.metadata.get("convert") or _converter(spec.type)
        return _checked(spec, convert(raw))
    except _InvalidError as error:
        suffix = f" (from {variable})" if variable else ""
        raise ConfigError(name, f"{error}{suffix}") from None


def _checked(spec: Field[Any], value: object) -> object:
    for check in spec.metadata.get("checks", ()):
        reason = check(value)
        if reason is not None:
            raise _InvalidError(reason)
    return value


_CONVERTERS: Mapping[object, Callable[[object], object]] = {
    str: _to_str,
    str | None: _to_str,  # TOML has no null: an absent key is None
    int: _to_int,
    int | None: _to_int,
    float: _to_float,
    bool: _to_bool,
    tuple[float, ...]: _to_floats,
    tuple[str, ...]: _to_strs,
}


def _converter(field_type: object) -> Callable[[object], object]:
    if get_origin(field_type) is Literal:
        return _choice(get_args(field_type))
    return _CONVERTERS[field_type]


def _choice(choices: tuple[str, ...]) -> Callable[[object], object]:
    def convert(value: object) -> object:
        if value not in choices:
            raise _InvalidError(f"must be one of {', '.join(map(repr, choices))}")
        return value

    return convert


# environment ----------------------------------------------------------------------------

_UNSET = object()  # an empty variable for an optional setting: back to its default
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _from_env(name: str, spec: Field[Any], text: str, variable: str) -> object:
    """The TOML-shaped value of an environment string, for the usual conversion and checks."""
    try:
        return _env_value(spec.type, text.strip())
    except ValueError:
        raise ConfigError(name, f"cannot be read from {variable}") from None


def _env_value(field_type: object, text: str) -> object:
    parse = _ENV_PARSERS.get(field_type, str)
    return parse(text)


def _env_bool(text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise ValueError(text)


def _env_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _env_floats(text: str) -> list[float]:
    return [float(item) for item in _env_list(text)]


def _env_optional(text: str) -> object:
    return text or _UNSET


_ENV_PARSERS: Mapping[object, Callable[[str], object]] = {
    bool: _env_bool,
    int: int,
    float: float,
    str | None: _env_optional,
    int | None: lambda text: int(text) if text else _UNSET,
    tuple[float, ...]: _env_floats,
    tuple[str, ...]: _env_list,
}
