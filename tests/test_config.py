from __future__ import annotations

from pathlib import Path

import pytest

from smsgw.config import (
    ConnectorSettings,
    DatabaseSettings,
    RouteSettings,
    Settings,
    SimulatorRule,
    SimulatorSettings,
    load_settings,
)
from smsgw.domain.pricing import Rate
from smsgw.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "smsgw.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "smsgw.toml"
    path.write_text(text, encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ or {})
    return caught.value


@pytest.fixture(autouse=True)
def _empty_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_defaults_when_there_is_no_file() -> None:
    """Without a file or variables every setting has its documented default."""
    settings = load_settings(None, {})
    assert settings.http.host == "127.0.0.1"
    assert settings.http.port == 8080
    assert settings.http.tls_cert is None
    assert settings.http.trusted_proxies == ()
    assert settings.http.max_body_bytes == 65536
    assert settings.database.url == "sqlite:///smsgw.db"
    assert settings.webhooks.allow_private_networks is False
    assert settings.webhooks.timeout_s == 10
    assert settings.webhooks.retry_delays_s == (30, 120, 600)
    assert (settings.auth.lockout_failures, settings.auth.lockout_window_s) == (10, 300)
    assert settings.auth.lockout_s == 900
    assert (settings.engine.validity_s, settings.engine.receipt_timeout_s) == (86400, 259200)
    assert settings.rates == ()
    assert settings == Settings()


def test_engine_process_settings_default_and_override(tmp_path: Path) -> None:
    """By default the engine shares serve's process, polls every 0.2 s, serves no metrics."""
    defaults = load_settings(None, {}).engine
    assert (defaults.separate_process, defaults.poll_s, defaults.metrics_port) == (False, 0.2, 0)
    path = write(tmp_path, "[engine]\nseparate_process = false\npoll_s = 0.05\n")
    environ = {"SMSGW_ENGINE_METRICS_PORT": "9102", "SMSGW_ENGINE_SEPARATE_PROCESS": "yes"}
    engine = load_settings(path, environ).engine
    assert (engine.separate_process, engine.poll_s, engine.metrics_port) == (True, 0.05, 9102)


def test_callbacks_process_settings_default_and_override(tmp_path: Path) -> None:
    """Apart, the callback worker has a process of its own by default, without metrics."""
    defaults = load_settings(None, {}).engine
    assert (defaults.callbacks_process, defaults.callbacks_metrics_port) == (True, 0)
    path = write(tmp_path, "[engine]\ncallbacks_process = false\ncallbacks_metrics_port = 9103\n")
    engine = load_settings(path, {}).engine
    assert (engine.callbacks_process, engine.callbacks_metrics_port) == (False, 9103)


def test_default_connector_and_route_when_none_configured() -> None:
    """No connector means one simulator named sim, and no route sends everything to it."""
    settings = load_settings(None, {})
    assert settings.connectors == (ConnectorSettings(name="sim", kind="simulator"),)
    assert settings.routes == (RouteSettings(prefix="", connector="sim"),)
    assert settings.route_for("0912345678") == "sim"


def test_default_route_goes_to_the_first_configured_connector(tmp_path: Path) -> None:
    """Connectors without routes: everything goes to the first connector."""
    path = write(tmp_path, '[[connectors]]\nname = "cht"\n[[connectors]]\nname = "fet"\n')
    settings = load_settings(path, {})
    assert settings.routes == (RouteSettings(prefix="", connector="cht"),)


def test_toml_file_sets_every_section(tmp_path: Path) -> None:
    """Values from the file replace the defaults and are converted to the field types."""
    path = write(
        tmp_path,
        """
        [http]
        port = 9000
        trusted_proxies = ["10.0.0.0/8", "::1"]
        [database]
        url = "postgresql://gw@db/smsgw"
        [webhooks]
        allow_private_networks = true
        retry_delays_s = [1, 2.5]
        [auth]
        lockout_failures = 3
        [engine]
        validity_s = 60
        [[connectors]]
        name = "cht"
        kind = "smpp"
        password = "pw"
        tps = 20
        bind = "transmitter+receiver"
        national_numbers = true
        [[routes]]
        prefix = "09"
        connector = "cht"
        [[rates]]
        prefix = "+81"
        points_per_segment = 3
        """,
    )
    settings = load_settings(path, {})
    assert settings.http.port == 9000
    assert settings.http.trusted_proxies == ("10.0.0.0/8", "::1/128")
    assert settings.database.url == "postgresql://gw@db/smsgw"
    assert settings.webhooks.allow_private_networks is True
    assert settings.webhooks.retry_delays_s == (1.0, 2.5)
    assert settings.auth.lockout_failures == 3
    assert settings.engine.validity_s == 60
    (connector,) = settings.connectors
    assert (connector.name, connector.kind, connector.password, connector.tps) == (
        "cht",
        "smpp",
        "pw",
        20,
    )
    assert connector.bind == "transmitter+receiver"
    assert connector.national_numbers is True
    assert settings.routes == (RouteSettings(prefix="09", connector="cht"),)
    assert settings.rates == (Rate(prefix="+81", points_per_segment=3),)


def test_connector_smpp_tuning_defaults_and_file_values(tmp_path: Path) -> None:
    """The ESME tuning settings default sensibly and are read from a connector table."""
    default = ConnectorSettings(name="x")
    assert (
        default.response_timeout_s,
        default.long_form,
        default.reconnect_max_s,
        default.throttle_backoff_s,
        default.registered_delivery,
    ) == (10.0, "udh", 30.0, 1.0, 1)
    text = (
        '[[connectors]]\nname = "cht"\nresponse_timeout_s = 2.5\nlong_form = "sar"\n'
        "reconnect_max_s = 60\nthrottle_backoff_s = 0.5\nregistered_delivery = 0\n"
    )
    (connector,) = load_settings(write(tmp_path, text), {}).connectors
    assert (
        connector.response_timeout_s,
        connector.long_form,
        connector.reconnect_max_s,
        connector.throttle_backoff_s,
        connector.registered_delivery,
    ) == (2.5, "sar", 60.0, 0.5, 0)


def test_the_documented_example_file_loads() -> None:
    """smsgw.example.toml in the repository root is a valid configuration."""
    settings = load_settings(EXAMPLE, {})
    assert settings.connectors


def test_path_comes_from_smsgw_config_when_not_given(tmp_path: Path) -> None:
    """$SMSGW_CONFIG names the file when no path is passed."""
    path = tmp_path / "elsewhere.toml"
    path.write_text("[http]\nport = 9001\n", encoding="utf-8")
    assert load_settings(None, {"SMSGW_CONFIG": str(path)}).http.port == 9001


def test_smsgw_toml_in_the_working_directory_is_read_by_default(tmp_path: Path) -> None:
    """./smsgw.toml is used when neither a path nor $SMSGW_CONFIG is given."""
    write(tmp_path, "[http]\nport = 9002\n")
    assert load_settings(None, {}).http.port == 9002


def test_a_missing_named_file_is_an_error(tmp_path: Path) -> None:
    """A file that was asked for but cannot be read fails, naming the file."""
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as caught:
        load_settings(missing, {})
    assert caught.value.name == str(missing)


def test_invalid_toml_is_an_error(tmp_path: Path) -> None:
    """A syntax error in the file is a ConfigError naming the file."""
    path = write(tmp_path, "[http\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, {})


def test_environment_beats_the_file(tmp_path: Path) -> None:
    """SMSGW_<SECTION>_<KEY> overrides the file's value."""
    path = write(tmp_path, '[http]\nport = 9000\n[database]\nurl = "sqlite:///a.db"\n')
    environ = {"SMSGW_HTTP_PORT": "9100", "SMSGW_DATABASE_URL": "memory:"}
    settings = load_settings(path, environ)
    assert settings.http.port == 9100
    assert settings.database.url == "memory:"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("1", True), ("YES", True), ("false", False), ("0", False), ("no", False)],
)
def test_environment_booleans(text: str, expected: bool) -> None:
    """Booleans read true/false/1/0/yes/no from the environment, in any case."""
    settings = load_settings(None, {"SMSGW_WEBHOOKS_ALLOW_PRIVATE_NETWORKS": text})
    assert settings.webhooks.allow_private_networks is expected


def test_environment_lists_are_comma_separated() -> None:
    """Trusted proxies and retry delays come from comma-separated variables."""
    environ = {
        "SMSGW_HTTP_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1",
        "SMSGW_WEBHOOKS_RETRY_DELAYS_S": "5,10",
    }
    settings = load_settings(None, environ)
    assert settings.http.trusted_proxies == ("10.0.0.0/8", "192.0.2.1/32")
    assert settings.webhooks.retry_delays_s == (5.0, 10.0)


def test_environment_numbers_are_converted() -> None:
    """Integer and float settings are parsed from their variables."""
    environ = {"SMSGW_AUTH_LOCKOUT_FAILURES": "4", "SMSGW_ENGINE_VALIDITY_S": "1.5"}
    settings = load_settings(None, environ)
    assert settings.auth.lockout_failures == 4
    assert settings.engine.validity_s == 1.5


def test_an_empty_variable_unsets_an_optional_setting(tmp_path: Path) -> None:
    """SMSGW_HTTP_TLS_CERT= removes the certificate the file set (and then the key must go)."""
    (tmp_path / "cert.pem").write_text("x", encoding="utf-8")
    path = write(tmp_path, '[http]\ntls_cert = "cert.pem"\n')
    settings = load_settings(path, {"SMSGW_HTTP_TLS_CERT": ""})
    assert settings.http.tls_cert is None


def test_unrelated_smsgw_variables_are_ignored() -> None:
    """Variables that name no setting belong to other tools and change nothing."""
    settings = load_settings(None, {"SMSGW_TEST_POSTGRES_URL": "x", "SMSGW_HTTP_PROT": "1"})
    assert settings == Settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SMSGW_HTTP_PORT", "eighty"),
        ("SMSGW_HTTP_PORT", "70000"),
        ("SMSGW_WEBHOOKS_ALLOW_PRIVATE_NETWORKS", "maybe"),
        ("SMSGW_WEBHOOKS_TIMEOUT_S", "nan"),
        ("SMSGW_HTTP_TRUSTED_PROXIES", "10.0.0.0/8,proxy"),
    ],
)
def test_bad_environment_values_name_setting_and_variable(variable: str, value: str) -> None:
    """A bad variable fails with the dotted setting name and says which variable it was."""
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {variable: value})
    section, key = variable.removeprefix("SMSGW_").lower().split("_", 1)
    assert caught.value.name == f"{section}.{key}"
    assert variable in caught.value.reason


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("[http]\nport = 0", "http.port"),
        ("[http]\nport = 65536", "http.port"),
        ('[http]\nport = "8080"', "http.port"),
        ('[http]\nhost = ""', "http.host"),
        ("[http]\nmax_body_bytes = 0", "http.max_body_bytes"),
        ('[http]\ntrusted_proxies = ["10.0.0.0/8", "x"]', "http.trusted_proxies"),
        ('[http]\ntrusted_proxies = "10.0.0.0/8"', "http.trusted_proxies"),
        ('[http]\ntls_cert = "absent.pem"\ntls_key = "absent.pem"', "http.tls_cert"),
        ('[database]\nurl = "mysql://db/x"', "database.url"),
        ('[webhooks]\nallow_private_networks = "yes"', "webhooks.allow_private_networks"),
        ("[webhooks]\ntimeout_s = 0", "webhooks.timeout_s"),
        ("[webhooks]\nretry_delays_s = []", "webhooks.retry_delays_s"),
        ("[webhooks]\nretry_delays_s = [30, -1]", "webhooks.retry_delays_s"),
        ("[auth]\nlockout_failures = 0", "auth.lockout_failures"),
        ("[auth]\nlockout_window_s = 0", "auth.lockout_window_s"),
        ("[auth]\nlockout_s = -5", "auth.lockout_s"),
        ("[engine]\nvalidity_s = 0", "engine.validity_s"),
        ("[engine]\nreceipt_timeout_s = true", "engine.receipt_timeout_s"),
        ('[engine]\nseparate_process = "yes"', "engine.separate_process"),
        ("[engine]\npoll_s = 0", "engine.poll_s"),
        ("[engine]\nmetrics_port = 65536", "engine.metrics_port"),
        ('[engine]\ncallbacks_process = "no"', "engine.callbacks_process"),
        ("[engine]\ncallbacks_metrics_port = -1", "engine.callbacks_metrics_port"),
        (
            "[engine]\nmetrics_port = 9102\ncallbacks_metrics_port = 9102",
            "engine.callbacks_metrics_port",
        ),
        ("[http]\nport = 9102\n[engine]\nmetrics_port = 9102", "engine.metrics_port"),
        (
            "[http]\nport = 9103\n[engine]\ncallbacks_metrics_port = 9103",
            "engine.callbacks_metrics_port",
        ),
        ('[[connectors]]\nkind = "smpp"', "connectors[0].name"),
        ('[[connectors]]\nname = ""', "connectors[0].name"),
        ('[[connectors]]\nname = "a"\n[[connectors]]\nname = "b"\ntps = 0', "connectors[1].tps"),
        ('[[connectors]]\nname = "a"\nkind = "http"', "connectors[0].kind"),
        ('[[connectors]]\nname = "a"\nbind = "receiver"', "connectors[0].bind"),
        ('[[connectors]]\nname = "a"\nport = 0', "connectors[0].port"),
        ('[[connectors]]\nname = "a"\nwindow = 0', "connectors[0].window"),
        ('[[connectors]]\nname = "a"\nenquire_link_s = 0', "connectors[0].enquire_link_s"),
        ('[[connectors]]\nname = "a"\nsource_ton = 256', "connectors[0].source_ton"),
        ('[[connectors]]\nname = "a"\nresponse_timeout_s = 0', "connectors[0].response_timeout_s"),
        ('[[connectors]]\nname = "a"\nlong_form = "tlv"', "connectors[0].long_form"),
        ('[[connectors]]\nname = "a"\nreconnect_max_s = -1', "connectors[0].reconnect_max_s"),
        ('[[connectors]]\nname = "a"\nthrottle_backoff_s = 0', "connectors[0].throttle_backoff_s"),
        (
            '[[connectors]]\nname = "a"\nregistered_delivery = 256',
            "connectors[0].registered_delivery",
        ),
        ('[[connectors]]\nname = "a"\nsystem_id = "x_long_system_id"', "connectors[0].system_id"),
        ('[[connectors]]\nname = "a"\n[[connectors]]\nname = "a"', "connectors[1].name"),
        ('[[routes]]\nprefix = "09"\nconnector = "nowhere"', "routes[0].connector"),
        ('[[routes]]\nconnector = "sim"', "routes[0].prefix"),
        ('[[routes]]\nprefix = "886"\nconnector = "sim"', "routes[0].prefix"),
        ('[[routes]]\nprefix = "+8869"\nconnector = "sim"', "routes[0].prefix"),
        ('[[routes]]\nprefix = "09"\nconnector = "sim"\n' * 2, "routes[1].prefix"),
        ('[[rates]]\nprefix = "+1"\npoints_per_segment = -1', "rates[0].points_per_segment"),
        ('[[rates]]\nprefix = "+1"\n[[rates]]\nprefix = "+1"', "rates[1].prefix"),
        ("connectors = 3", "connectors"),
        ("http = 3", "http"),
    ],
)
def test_every_bad_value_names_its_setting(tmp_path: Path, text: str, name: str) -> None:
    """A bad value raises ConfigError with the dotted name of the setting and a reason."""
    error = config_error(tmp_path, text)
    assert error.name == name
    assert error.reason


def test_tls_cert_and_key_go_together(tmp_path: Path) -> None:
    """A certificate without a key (or the reverse) is an error."""
    (tmp_path / "cert.pem").write_text("x", encoding="utf-8")
    error = config_error(tmp_path, '[http]\ntls_cert = "cert.pem"')
    assert error.name == "http.tls_key"


def test_tls_files_that_exist_are_accepted(tmp_path: Path) -> None:
    """Existing certificate and key files are taken as given."""
    for name in ("cert.pem", "key.pem"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    path = write(tmp_path, '[http]\ntls_cert = "cert.pem"\ntls_key = "key.pem"')
    settings = load_settings(path, {})
    assert (settings.http.tls_cert, settings.http.tls_key) == ("cert.pem", "key.pem")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("[http]\nprot = 80", "http.prot"),
        ('[[connectors]]\nname = "a"\npasword = "x"', "connectors[0].pasword"),
        ("[htp]\nport = 80", "htp"),
    ],
)
def test_unknown_keys_are_rejected(tmp_path: Path, text: str, name: str) -> None:
    """A typo in a key or section is an error, never silently ignored."""
    error = config_error(tmp_path, text)
    assert error.name == name
    assert "unknown" in error.reason


def test_connector_password_is_hidden_from_repr(tmp_path: Path) -> None:
    """The connector's password never appears in its repr or the settings' repr."""
    path = write(tmp_path, '[[connectors]]\nname = "cht"\npassword = "s3cr3t"')
    settings = load_settings(path, {})
    assert "s3cr3t" not in repr(settings.connectors[0])
    assert "s3cr3t" not in repr(settings)


def test_a_bad_password_is_not_quoted_in_the_error(tmp_path: Path) -> None:
    """The error for a too-long password names the rule, never the value."""
    error = config_error(tmp_path, '[[connectors]]\nname = "a"\npassword = "toolong-s3cr3t"')
    assert error.name == "connectors[0].password"
    assert "s3cr3t" not in str(error)


def test_database_password_is_hidden_from_repr_and_errors(tmp_path: Path) -> None:
    """A password inside the database URL is redacted in reprs and never quoted in errors."""
    assert "s3cr3t" not in repr(DatabaseSettings(url="postgresql://gw:s3cr3t@db/smsgw"))
    error = config_error(tmp_path, '[database]\nurl = "mysql://gw:s3cr3t@db/x"')
    assert "s3cr3t" not in str(error)


def test_route_for_picks_the_longest_matching_prefix(tmp_path: Path) -> None:
    """The longest route prefix of the canonical number decides the connector."""
    path = write(
        tmp_path,
        """
        [[connectors]]
        name = "cht"
        [[connectors]]
        name = "fet"
        [[connectors]]
        name = "intl"
        [[routes]]
        prefix = "09"
        connector = "cht"
        [[routes]]
        prefix = "0955"
        connector = "fet"
        [[routes]]
        prefix = "+"
        connector = "intl"
        """,
    )
    settings = load_settings(path, {})
    assert settings.route_for("0912345678") == "cht"
    assert settings.route_for("0955123456") == "fet"
    assert settings.route_for("+819012345678") == "intl"


def test_route_for_is_none_when_no_prefix_matches(tmp_path: Path) -> None:
    """Without a catch-all route an unmatched number has no connector."""
    path = write(tmp_path, '[[routes]]\nprefix = "09"\nconnector = "sim"')
    assert load_settings(path, {}).route_for("+819012345678") is None


def test_connector_lookup_by_name() -> None:
    """Settings.connector finds a connector by name and raises KeyError for an unknown one."""
    settings = Settings()
    assert settings.connector("sim").kind == "simulator"
    with pytest.raises(KeyError):
        settings.connector("nope")


def test_simulator_defaults() -> None:
    """The simulator listens on 2775/2776, binds smsgw/secret, delivers everything after 1 s."""
    simulator = load_settings(None, {}).simulator
    assert (simulator.system_id, simulator.password) == ("smsgw", "secret")
    assert (simulator.host, simulator.port, simulator.control_port) == ("127.0.0.1", 2775, 2776)
    assert (simulator.receipt_delay_s, simulator.receipt_jitter_s) == (1.0, 0.0)
    assert dict(simulator.outcomes) == {"DELIVRD": 1.0}
    assert simulator.rules == ()
    assert (simulator.throttle_tps, simulator.drop_every_s, simulator.stall_s) == (0, 0, 0)
    assert (simulator.duplicate_receipts, simulator.early_receipts) == (False, False)
    assert simulator.seed is None
    assert simulator == SimulatorSettings()


def test_simulator_section_from_file_and_environment(tmp_path: Path) -> None:
    """Outcomes, rules and behaviours come from the file; scalars also from SMSGW_SIMULATOR_*."""
    path = write(
        tmp_path,
        """
        [simulator]
        outcomes = { DELIVRD = 0.95, UNDELIV = 0.03, EXPIRED = 0.02 }
        stall_every_s = 10
        stall_s = 2
        seed = 42
        [[simulator.rules]]
        suffix = "0000"
        outcome = "UNDELIV"
        [[simulator.rules]]
        prefix = "8869111"
        submit_status = "ESME_RINVDSTADR"
        """,
    )
    simulator = load_settings(path, {"SMSGW_SIMULATOR_PORT": "3775"}).simulator
    assert dict(simulator.outcomes) == {"DELIVRD": 0.95, "UNDELIV": 0.03, "EXPIRED": 0.02}
    assert simulator.rules == (
        SimulatorRule(suffix="0000", outcome="UNDELIV"),
        SimulatorRule(prefix="8869111", submit_status="ESME_RINVDSTADR"),
    )
    assert (simulator.stall_every_s, simulator.stall_s, simulator.seed) == (10, 2, 42)
    assert simulator.port == 3775


def test_simulator_receipt_jitter_from_file_and_environment(tmp_path: Path) -> None:
    """receipt_jitter_s comes from [simulator] and SMSGW_SIMULATOR_RECEIPT_JITTER_S, which wins."""
    path = write(tmp_path, "[simulator]\nreceipt_delay_s = 30\nreceipt_jitter_s = 2.5\n")
    assert load_settings(path, {}).simulator.receipt_jitter_s == 2.5
    environ = {"SMSGW_SIMULATOR_RECEIPT_JITTER_S": "10"}
    simulator = load_settings(path, environ).simulator
    assert (simulator.receipt_delay_s, simulator.receipt_jitter_s) == (30, 10)


def test_negative_receipt_jitter_in_the_environment_names_the_setting(tmp_path: Path) -> None:
    """A negative SMSGW_SIMULATOR_RECEIPT_JITTER_S is refused as simulator.receipt_jitter_s."""
    environ = {"SMSGW_SIMULATOR_RECEIPT_JITTER_S": "-0.5"}
    assert config_error(tmp_path, "", environ).name == "simulator.receipt_jitter_s"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("[simulator]\noutcomes = { DELIVERED = 1 }", "simulator.outcomes"),
        ("[simulator]\noutcomes = { ENROUTE = 1 }", "simulator.outcomes"),
        ("[simulator]\noutcomes = { DELIVRD = 0 }", "simulator.outcomes"),
        ("[simulator]\noutcomes = {}", "simulator.outcomes"),
        ("[simulator]\nport = 0", "simulator.port"),
        ("[simulator]\nreceipt_delay_s = -1", "simulator.receipt_delay_s"),
        ("[simulator]\nreceipt_jitter_s = -1", "simulator.receipt_jitter_s"),
        ("[simulator]\nthrottle_tps = -1", "simulator.throttle_tps"),
        ("[simulator]\npassword = 'ninechars'", "simulator.password"),
        ("[simulator]\nstall_s = 2", "simulator.stall_s"),
        ("[simulator]\nstall_every_s = 2\nstall_s = 2", "simulator.stall_s"),
        ("[simulator]\nseed = 'x'", "simulator.seed"),
        ("[simulator]\ncolour = 1", "simulator.colour"),
        ("[[simulator.rules]]\noutcome = 'UNDELIV'", "simulator.rules[0].suffix"),
        (
            "[[simulator.rules]]\nsuffix = '1'\nprefix = '2'\noutcome = 'UNDELIV'",
            "simulator.rules[0].suffix",
        ),
        ("[[simulator.rules]]\nsuffix = '0000'", "simulator.rules[0].outcome"),
        ("[[simulator.rules]]\nsuffix = '0x'\noutcome = 'UNDELIV'", "simulator.rules[0].suffix"),
        ("[[simulator.rules]]\nsuffix = '0'\noutcome = 'GONE'", "simulator.rules[0].outcome"),
        (
            "[[simulator.rules]]\nsuffix = '0'\nsubmit_status = 'NOPE'",
            "simulator.rules[0].submit_status",
        ),
    ],
)
def test_bad_simulator_settings_name_the_setting(tmp_path: Path, text: str, name: str) -> None:
    """Every bad simulator setting is refused with its dotted name."""
    assert config_error(tmp_path, text).name == name


def test_simulator_password_is_hidden_from_repr(tmp_path: Path) -> None:
    """The simulator password never shows in a repr."""
    path = write(tmp_path, "[simulator]\npassword = 'hunter2'\n")
    assert "hunter2" not in repr(load_settings(path, {}))
