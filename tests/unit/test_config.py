"""The one config loader: defaults, TOML file, environment (with *_FILE secrets), overrides."""
import pytest

from appliance.config import ConfigError, load_config, resolve_data_dir


def test_defaults_apply_without_file_or_environment(tmp_path):
    config = load_config(tmp_path, environ={})
    assert config["web"]["workers"] == 2
    assert config.path("db", "path") == tmp_path.resolve() / "appliance.db"


def test_layers_apply_in_order(tmp_path):
    (tmp_path / "appliance.toml").write_text('[web]\nworkers = 4\nbind = "0.0.0.0:80"\n', encoding="utf-8")
    config = load_config(tmp_path, environ={"APPLIANCE_WEB__WORKERS": "6"},
                         overrides={"site": {"name": "tokyo-1"}})
    assert config["web"]["workers"] == 6          # environment beats the file
    assert config["web"]["bind"] == "0.0.0.0:80"  # file beats the default
    assert config["site"]["name"] == "tokyo-1"


def test_secret_from_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n", encoding="utf-8")
    config = load_config(tmp_path, environ={"APPLIANCE_WEB__SECRET_KEY_FILE": str(secret)})
    assert config["web"]["secret_key"] == "s3cret"


def test_unreadable_secret_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="APPLIANCE_WEB__SECRET_KEY_FILE"):
        load_config(tmp_path, environ={"APPLIANCE_WEB__SECRET_KEY_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize("environ, message", [
    ({"APPLIANCE_WEB__WORKERS": "many"}, "web.workers"),
    ({"APPLIANCE_NOPE__X": "1"}, "unknown section"),
    ({"APPLIANCE_WEB__NOPE": "1"}, "unknown setting web.nope"),
])
def test_bad_environment_values_are_named(tmp_path, environ, message):
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, environ=environ)


def test_broken_toml_names_the_file(tmp_path):
    (tmp_path / "appliance.toml").write_text("[web\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="appliance.toml"):
        load_config(tmp_path, environ={})


def test_data_dir_from_option_or_environment(tmp_path):
    assert resolve_data_dir(str(tmp_path), environ={}) == tmp_path.resolve()
    assert resolve_data_dir(None, environ={"APPLIANCE_DATA_DIR": str(tmp_path)}) == tmp_path.resolve()
    with pytest.raises(ConfigError, match="--data-dir"):
        resolve_data_dir(None, environ={})


def test_lists_and_tables_from_the_environment(tmp_path):
    config = load_config(tmp_path, environ={"APPLIANCE_MTA__NAMESERVERS": "127.0.0.1:5353, 127.0.0.2",
                                            "APPLIANCE_MTA__TRANSPORT": "*=127.0.0.1:2525"})
    assert config["mta"]["nameservers"] == ["127.0.0.1:5353", "127.0.0.2"]
    assert config["mta"]["transport"] == {"*": "127.0.0.1:2525"}
    with pytest.raises(ConfigError, match="key=value"):
        load_config(tmp_path, environ={"APPLIANCE_MTA__TRANSPORT": "nonsense"})
