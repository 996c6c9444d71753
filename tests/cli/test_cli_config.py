"""Settings files through the installed ``hpcbridge``: the environment over the user's
config.toml over the site's over the defaults; a bad file is one line naming the file, the
key and the fix (exit 2); ``config show`` says where each value came from, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpcbridge.config import DEFAULT_SITE_CONFIG, config_files
from tests.cli.conftest import RunHpcbridge, assert_one_line_usage_error


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """Both settings files under tmp_path (never /etc or the developer's own)."""
    (tmp_path / "user").mkdir()
    (tmp_path / "site").mkdir()
    return {
        "HPCBRIDGE_CONFIG": str(tmp_path / "user" / "config.toml"),
        "HPCBRIDGE_SITE_CONFIG": str(tmp_path / "site" / "config.toml"),
    }


def _show(hpcbridge: RunHpcbridge, env: dict[str, str]) -> dict[str, dict[str, object]]:
    result = hpcbridge("config", "show", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return {row["name"]: row for row in json.loads(result.stdout)["settings"]}


def test_environment_over_user_file_over_site_file_over_defaults(
    hpcbridge: RunHpcbridge, files: dict[str, str]
) -> None:
    Path(files["HPCBRIDGE_SITE_CONFIG"]).write_text(
        "poll_interval_s = 5\nkill_grace_s = 4\nlocal_cpus = 1\n"
    )
    Path(files["HPCBRIDGE_CONFIG"]).write_text("poll_interval_s = 2\nlocal_cpus = 3\n")
    shown = _show(hpcbridge, files | {"HPCBRIDGE_LOCAL_CPUS": "7"})
    assert shown["local_cpus"]["value"] == 7
    assert shown["local_cpus"]["source"] == "HPCBRIDGE_LOCAL_CPUS"
    assert shown["poll_interval_s"]["value"] == 2.0
    assert shown["poll_interval_s"]["source"] == files["HPCBRIDGE_CONFIG"]
    assert shown["kill_grace_s"]["value"] == 4.0
    assert shown["kill_grace_s"]["source"] == files["HPCBRIDGE_SITE_CONFIG"]
    assert shown["lost_grace_s"] == {
        "name": "lost_grace_s",
        "variable": "HPCBRIDGE_LOST_GRACE_S",
        "value": 60.0,
        "source": "default",
    }


def test_files_apply_to_commands(
    hpcbridge: RunHpcbridge, files: dict[str, str], tmp_path: Path
) -> None:
    """A database named only in the site file is the one 'list' uses."""
    database = tmp_path / "site.db"
    Path(files["HPCBRIDGE_SITE_CONFIG"]).write_text(f'database_url = "sqlite:///{database}"\n')
    result = hpcbridge("list", env=files)
    assert result.returncode == 0, result.stderr
    assert database.exists()
    assert not (tmp_path / "home" / "hpcbridge.db").exists()


def test_secrets_are_masked(hpcbridge: RunHpcbridge, files: dict[str, str]) -> None:
    Path(files["HPCBRIDGE_CONFIG"]).write_text(
        'token = "tok-secret-1"\n'
        'database_url = "postgresql+psycopg://me:pw-secret-2@db.example/hpcbridge"\n'
    )
    for args in (("config", "show"), ("config", "show", "--json")):
        result = hpcbridge(*args, env=files)
        assert result.returncode == 0, result.stderr
        assert "tok-secret-1" not in result.stdout
        assert "pw-secret-2" not in result.stdout
        assert "********" in result.stdout


# what the file says, the key the error names, the fix it gives
BAD_FILES = {
    "broken TOML": ("poll_interval_s = \n", "is not valid TOML", "fix it"),
    "unknown key": ("pol_interval_s = 2\n", "unknown setting 'pol_interval_s'", "poll_interval_s"),
    "a table": ("[oidc]\nissuer = 'x'\n", "unknown setting 'oidc'", "did you mean"),
    "bad number": (
        "poll_interval_s = -2\n",
        "poll_interval_s = -2 is invalid",
        "set it to a number greater than 0 (seconds)",
    ),
    "wrong type": ("local_cpus = 'many'\n", "local_cpus = 'many' is invalid", "a whole number"),
    "bad database URL": ("database_url = 'foo'\n", "database_url = 'foo'", "an SQLAlchemy URL"),
}


@pytest.mark.parametrize("which", ["HPCBRIDGE_CONFIG", "HPCBRIDGE_SITE_CONFIG"])
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_one_line_naming_file_key_and_fix(
    case: str, which: str, hpcbridge: RunHpcbridge, files: dict[str, str], tmp_path: Path
) -> None:
    text, problem, fix = BAD_FILES[case]
    Path(files[which]).write_text(text)
    for command in (("list",), ("config", "show")):
        line = assert_one_line_usage_error(hpcbridge(*command, env=files))
        assert line.startswith(f"error: {files[which]}"), line
        assert problem in line and fix in line, line
    assert not (tmp_path / "home" / "hpcbridge.db").exists()  # nothing stored


def test_a_bad_file_under_a_good_environment_is_still_refused(
    hpcbridge: RunHpcbridge, files: dict[str, str]
) -> None:
    """The variable wins, but the broken file is reported rather than silently shadowed."""
    Path(files["HPCBRIDGE_CONFIG"]).write_text("poll_interval_s = 'soon'\n")
    result = hpcbridge("list", env=files | {"HPCBRIDGE_POLL_INTERVAL_S": "1"})
    assert "poll_interval_s = 'soon' is invalid" in assert_one_line_usage_error(result)


def test_clusters_file_defaults_to_the_config_directory(
    hpcbridge: RunHpcbridge, files: dict[str, str], tmp_path: Path
) -> None:
    in_config = Path(files["HPCBRIDGE_CONFIG"]).parent / "clusters.yaml"
    result = hpcbridge("config", "show", "--json", env=files)
    assert json.loads(result.stdout)["clusters_file"] == str(in_config)
    # An existing <home>/clusters.yaml keeps working while the config directory has none.
    earlier = tmp_path / "home" / "clusters.yaml"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("clusters: {}\n")
    result = hpcbridge("config", "show", "--json", env=files)
    assert json.loads(result.stdout)["clusters_file"] == str(earlier)
    in_config.write_text("clusters: {}\n")
    result = hpcbridge("config", "show", "--json", env=files)
    assert json.loads(result.stdout)["clusters_file"] == str(in_config)


def test_text_output_names_the_files(hpcbridge: RunHpcbridge, files: dict[str, str]) -> None:
    Path(files["HPCBRIDGE_CONFIG"]).write_text("lost_grace_s = 90\n")
    result = hpcbridge("config", "show", env=files)
    assert result.returncode == 0, result.stderr
    assert f"user file: {files['HPCBRIDGE_CONFIG']}\n" in result.stdout
    assert f"site file: {files['HPCBRIDGE_SITE_CONFIG']} (absent)" in result.stdout
    row = next(line for line in result.stdout.splitlines() if "lost_grace_s" in line)
    assert row.split() == ["lost_grace_s", "90.0", files["HPCBRIDGE_CONFIG"]]


def test_default_locations_follow_xdg() -> None:
    found = config_files({"XDG_CONFIG_HOME": "/cfg"})
    assert found.user == Path("/cfg/hpcbridge/config.toml")
    assert found.site == DEFAULT_SITE_CONFIG == Path("/etc/hpcbridge/config.toml")
    assert found.directory == Path("/cfg/hpcbridge")
    relative = config_files({"XDG_CONFIG_HOME": "relative"})  # ignored, as the spec says
    assert relative.user == Path.home() / ".config" / "hpcbridge" / "config.toml"
    chosen = config_files({"HPCBRIDGE_CONFIG": "/a/b.toml", "HPCBRIDGE_SITE_CONFIG": "/c.toml"})
    assert (chosen.user, chosen.site) == (Path("/a/b.toml"), Path("/c.toml"))
