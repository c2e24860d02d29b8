"""
Values a command-line option sets for one run over the settings file's
(C{--demo} turns screenshots on, C{--mqtt} sets the broker): the store
remembers them, with the file's value, so the page can say why a field
differs from the file; a save that writes the key ends the override.
"""

from __future__ import annotations

from numberok import tap
from numberok.settings import SettingsStore, load
from numberok.settings.store import Override

ATTACH = "NetServer.AttachScreenshotsToEvents"


def parsed(tmp_path, text: str, *argv: str) -> tap.Options:
    config = tmp_path / "numberok.ini"
    config.write_text(text)
    options = tap.Options()
    options.parseOptions(["--config", str(config), "--journal", "none",
                          *argv])
    return options


def test_demo_over_a_file_that_says_off_is_an_override(tmp_path):
    options = parsed(tmp_path, "[NetServer]\nAttachScreenshotsToEvents = 0\n",
                     "--demo")
    assert options.settings[ATTACH] is True
    assert options.overrides == {ATTACH: Override("--demo", False)}


def test_options_that_change_nothing_are_no_override(tmp_path):
    assert parsed(tmp_path, "[NetServer]\nAttachScreenshotsToEvents = 1\n",
                  "--demo").overrides == {}
    assert parsed(tmp_path, "").overrides == {}


def test_mqtt_broker_from_the_command_line_is_an_override(tmp_path):
    options = parsed(tmp_path, "", "--mqtt", "tcp:127.0.0.1:1883")
    assert options.overrides == {"Mqtt.Broker": Override("--mqtt", "")}


def test_a_save_that_writes_the_key_ends_the_override(tmp_path):
    options = parsed(tmp_path, "[NetServer]\nAttachScreenshotsToEvents = 0\n",
                     "--demo")
    path = str(tmp_path / "numberok.ini")
    store = SettingsStore(options.settings, path)
    store.overrides.update(options.overrides)
    # A save of another key leaves the file's value, and the override.
    store.apply({"NetServer.AttachedScreenshotsQuality": 60})
    assert load(path)[ATTACH] is False
    assert ATTACH in store.overrides
    # Switched off on the page and saved: the file says what runs.
    store.apply({ATTACH: False})
    assert ATTACH not in store.overrides
