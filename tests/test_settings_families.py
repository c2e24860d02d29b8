"""
Section families ([Webhook:<name>], [Gate:<c>:<z>], [Channel:<n>]): read
from the file, validated with every other key, saved back keeping the
user's comments, and shown over the JSON API without their secrets.
"""

import pytest

from numberok.settings import SettingsError, parseText, updateText
from numberok.settings.keys import (CHANNEL_FAMILY, CHANNEL_NAME,
                                    GATE_FAMILY, GATE_WHEN, WEBHOOK_CHANNELS,
                                    WEBHOOK_FAMILY, WEBHOOK_STATES,
                                    WEBHOOK_URL)
from numberok.web.settings_api import sectionsAsJSON

WEBHOOK = """\
[Webhook:erp]
Url = https://erp.example/hs/numberok/events
States = lost, Detected
Channels = 3, 1
Secret = s3cret
"""


def test_sections_of_a_family_are_read_with_typed_values_and_defaults():
    settings = parseText(WEBHOOK + "[Channel:3]\nName = North gate\n")
    [erp] = settings.family(WEBHOOK_FAMILY)
    assert erp.ident == "erp"
    assert erp[WEBHOOK_URL] == "https://erp.example/hs/numberok/events"
    assert erp[WEBHOOK_STATES] == ("Lost", "Detected")
    assert erp[WEBHOOK_CHANNELS] == (3, 1)
    assert erp["Pictures"] == "none"
    assert settings.section(CHANNEL_FAMILY, "3")[CHANNEL_NAME] == \
        "North gate"
    assert settings.section(CHANNEL_FAMILY, "4") is None


@pytest.mark.parametrize("text, name, message", [
    ("[Webhook:no spaces]\nUrl = http://h/\n", "Webhook:no spaces",
     "[Webhook:<name>]"),
    ("[Webhook:a]\nUrl = file:///etc/passwd\n", "Webhook:a.Url",
     "not an http:// or https:// URL"),
    ("[Webhook:a]\nMethod = post\n", "Webhook:a.Url", "needs a Url"),
    ("[Webhook:a]\nUrl = http://h/\nStates = Gone\n", "Webhook:a.States",
     "one of Detected, Updated, Lost"),
    ("[Webhook:a]\nUrl = http://h/\nUsername = u\n", "Webhook:a.Password",
     "go together"),
    ("[Webhook:a]\nUrl = http://h/\nColour = red\n", "Webhook:a.Colour",
     "unknown key"),
    ("[Gate:0:7]\nWhen = never\n", "Gate:0:7", "zone 0..3"),
    ("[Gate:2000:0]\nWhen = never\n", "Gate:2000:0", "channel must be"),
    ("[Gate:0:0]\nWhen = allow\n", "Gate:0:0.Url", "needs a Url"),
    ("[Channel:x]\nName = a\n", "Channel:x", "[Channel:<n>]"),
])
def test_a_bad_section_is_an_error_naming_it(text, name, message):
    with pytest.raises(SettingsError) as e:
        parseText(text)
    assert message in e.value.errors[name]


def test_saving_adds_and_removes_sections_and_keeps_comments():
    text = "[NetServer]\nPort = 7700 ; the port our VMS expects\n"
    base = parseText(text)
    added = base.withChanges({"Webhook:erp.Url": "http://127.0.0.1/x",
                              "Gate:0:1.When": "never"})
    written = updateText(text, base, added)
    assert "; the port our VMS expects" in written
    assert parseText(written) == added
    assert parseText(written).section(GATE_FAMILY, "0:1")[GATE_WHEN] == \
        "never"
    removed = added.withChanges({"Webhook:erp": None})
    rewritten = updateText(written, added, removed)
    assert "[Webhook:erp]" not in rewritten
    assert parseText(rewritten) == removed


def test_the_api_shows_whether_a_secret_is_set_never_its_value():
    shown = sectionsAsJSON(parseText(WEBHOOK))
    [erp] = shown["Webhook"]
    assert erp["name"] == "erp"
    assert erp["Secret"] == "********"
    assert erp["Token"] is None
    assert "s3cret" not in repr(shown)
    assert erp["States"] == ["Lost", "Detected"]


def test_a_put_that_sends_the_mask_back_leaves_the_secret_alone():
    from numberok.web.settings_api import SECRET_MASK, _withoutMasks
    changes = {"Webhook:erp.Secret": SECRET_MASK,
               "Webhook:erp.Url": "http://h/", "Webhook:erp.Token": "new"}
    assert _withoutMasks(changes) == {"Webhook:erp.Url": "http://h/",
                                      "Webhook:erp.Token": "new"}
