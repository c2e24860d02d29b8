"""
Typed keys (one constant per schema key, a typo fails at import) and the
wording of field errors: long values shortened, control characters
refused, every bad entry of a list named.
"""

from __future__ import annotations

import importlib

import pytest
from hypothesis import given, strategies as st

from numberok import settings as S
from numberok.settings import Settings, SettingsError, keys
from numberok.settings.keys import (ANALYTICS_SKIP_FIRST_RESULTS,
                                    CAMERAS_TOKEN, JOURNAL_PATH, MQTT_QOS,
                                    NETSERVER_ALLOWED_CLIENTS,
                                    NETSERVER_PORT, PLATES_TEMPLATES,
                                    SYSTEM_SYSTEM_ID, ZONE_IN_DIRECTION,
                                    ZONE_LOSS_INTERVAL_SEC)


def errorOf(key, raw) -> str:
    with pytest.raises(SettingsError) as e:
        Settings().withChanges({key: raw})
    return e.value.errors[key.name]


# -- typed keys --------------------------------------------------------------

def test_key_constants_and_the_schema_match_one_to_one():
    constants = {name: value for name, value in vars(keys).items()
                 if isinstance(value, S.Field)}
    schema = S.SCHEMA + S.ZONE_SCHEMA + tuple(
        f for family in keys.FAMILIES.values() for f in family.fields)
    assert sorted(constants.values(), key=lambda f: f.name) == \
        sorted(schema, key=lambda f: f.name)
    assert len(set(f.name for f in schema)) == len(schema)
    for name, field in constants.items():
        assert name == keys.constantName(field)
    assert keys.constantName(MQTT_QOS) == "MQTT_QOS"
    assert keys.constantName(SYSTEM_SYSTEM_ID) == "SYSTEM_SYSTEM_ID"


def test_misspelt_key_fails_at_import():
    with pytest.raises(ImportError):
        exec("from numberok.settings.keys import NETSERVER_PROT", {})
    importlib.import_module("numberok.settings.keys")


def test_values_are_read_by_constant_and_by_name_alike():
    settings = Settings().withChanges({NETSERVER_PORT: "7800",
                                       "Analytics.SkipFirstResults": 3,
                                       CAMERAS_TOKEN: "tok-0123456789abcdef"})
    assert settings[NETSERVER_PORT] == settings["NetServer.Port"] == 7800
    assert settings[ANALYTICS_SKIP_FIRST_RESULTS] == 3
    assert settings[CAMERAS_TOKEN] == "tok-0123456789abcdef"
    assert settings[MQTT_QOS] == 1


def test_zone_values_are_read_by_constant_and_by_attribute_alike():
    settings = Settings().withChanges({"Zone:3:2.LossIntervalSec": "2.5",
                                       "Zone:3:2.InDirection": "left"})
    zone = settings.zone(3, 2)
    assert zone[ZONE_LOSS_INTERVAL_SEC] == zone.lossInterval == 2.5
    assert zone[ZONE_IN_DIRECTION] == zone["InDirection"] == "left"
    assert settings.zone(9, 0)[ZONE_LOSS_INTERVAL_SEC] == 5.0


# -- error wording -------------------------------------------------------------

def test_huge_number_is_quoted_short_without_pythons_hint():
    message = errorOf(NETSERVER_PORT, "1" * 5000)
    assert message == ("'1111111111…' (5000 digits) is not a whole number "
                       "in 1..65535")
    message = errorOf(NETSERVER_PORT, 10 ** 5000)
    assert message == "1000000000… (5001 digits) is out of range 1..65535"
    assert "limit" not in errorOf(SYSTEM_SYSTEM_ID, -(10 ** 5000))


def test_long_text_is_quoted_by_its_start_and_length():
    message = errorOf(MQTT_QOS, "x" * 300)
    assert message == ("'xxxxxxxxxx…' (300 characters) is not a whole "
                       "number in 0..2")


@pytest.mark.parametrize("raw", ["journal\nother", "a\rb", "a\x00b",
                                 "tab\there", "bell\x07"])
def test_control_character_in_a_text_field_is_refused(raw):
    message = errorOf(JOURNAL_PATH, raw)
    assert "control character" in message and "not allowed" in message


def test_control_characters_are_refused_in_every_text_field():
    for field in S.SCHEMA:
        if field.kind in ("str", "choice", "cidrs"):
            with pytest.raises(SettingsError):
                Settings().withChanges({field: "x\x1by"})


def test_overlong_text_is_refused_with_its_length():
    assert errorOf(CAMERAS_TOKEN, "t" * 2000) == (
        "'tttttttttt…' (2000 characters) is longer than 1024 characters")


def test_templates_may_still_span_lines():
    settings = Settings().withChanges(
        {PLATES_TEMPLATES: "ru:L DDD LL RR[R]\nby:DDDD LL-D"})
    assert [t.name for t in settings[PLATES_TEMPLATES]] == ["ru", "by"]


def test_every_bad_allowed_client_is_named():
    message = errorOf(NETSERVER_ALLOWED_CLIENTS, "10.0.0.300, ::1, foo")
    assert message == ("'10.0.0.300', 'foo' are not IP addresses or CIDR "
                       "networks")
    assert errorOf(NETSERVER_ALLOWED_CLIENTS, "foo") == \
        "'foo' is not an IP address or CIDR network"


def test_invalid_file_value_with_control_character_is_refused_at_load():
    with pytest.raises(SettingsError) as e:
        S.parseText("[Journal]\nPath = a\x01b\n")
    assert "control character" in e.value.errors["Journal.Path"]


# -- property: any value of any field ------------------------------------------

values = st.one_of(st.text(max_size=40), st.integers(), st.floats(),
                   st.booleans(), st.none(),
                   st.integers(4000, 6000).map(lambda n: "7" * n),
                   st.integers(4000, 6000).map(lambda n: 10 ** n))


@given(st.sampled_from(S.SCHEMA + S.ZONE_SCHEMA), values)
def test_any_value_of_any_field_parses_or_raises_a_short_value_error(
        field, raw):
    try:
        value = field.parse(raw)
    except ValueError as e:
        # A parser of its own (templates) may quote one whole item.
        longest = 400 if field.parser is None else 1200
        # ("limit": Python's own int-conversion message, unless the value
        # itself said it.)
        assert len(str(e)) < longest and (
            "limit" not in str(e) or "limit" in str(raw))
        return
    assert field.parse(field.render(value)) == value
