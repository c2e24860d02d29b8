"""
Every key of the settings file, written once: one module-level constant
per key, named C{SECTION_KEY} in upper snake case, whose value is the
L{Field} itself (type, range, default, help).  L{SCHEMA} and L{ZONE_SCHEMA}
are collected from these constants, so the typed names and the schema
cannot drift apart, and a misspelt name fails when it is imported::

    from numberok.settings.keys import NETSERVER_PORT, ZONE_LOSS_INTERVAL_SEC

    port = store.current[NETSERVER_PORT]
    loss = store.current.zone(channel, zone)[ZONE_LOSS_INTERVAL_SEC]

Zone keys (section C{Zone}) are the keys of every C{[Zone:<c>:<z>]}
section.  Add a key by adding a constant here (and a line with its
default to etc/numberok.ini).
"""

from __future__ import annotations

import re

from numberok import plates
from numberok.channels import checkChannelName
from numberok.settings.families import Family, SectionSettings
from numberok.settings.fields import (Field, parseCameraToken, parseHeaders,
                                      parseHttpUrl, parseNumberList,
                                      parsePasswordHash, parseWordList)

NETSERVER_ENABLE = Field(
    "NetServer", "Enable", "bool", True,
    help="Listen for NumberOk clients.")
NETSERVER_PORT = Field(
    "NetServer", "Port", "int", 7700, 1, 65535,
    help="TCP port of the event server.")
NETSERVER_MAX_CONNECTIONS = Field(
    "NetServer", "MaxConnections", "int", 4, 1, 4,
    help="Clients connected at once; the next one is closed.")
NETSERVER_ATTACH_SCREENSHOTS_TO_EVENTS = Field(
    "NetServer", "AttachScreenshotsToEvents", "bool", False,
    help="Send the JPEG of the best read with each event.")
NETSERVER_ATTACHED_SCREENSHOTS_QUALITY = Field(
    "NetServer", "AttachedScreenshotsQuality", "int", 50, 10, 100,
    help="JPEG quality of attached screenshots.")
NETSERVER_SEND_LOST_ONLY = Field(
    "NetServer", "SendLostOnly", "bool", False,
    help="Send only Lost events.")
NETSERVER_ALLOWED_CLIENTS = Field(
    "NetServer", "AllowedClients", "cidrs", (),
    help="Who may connect; empty means anyone.")

ANALYTICS_SOFT_COMPARISON = Field(
    "Analytics", "SoftComparison", "bool", True,
    help="Join reads to a track within a Levenshtein distance.")
ANALYTICS_LEVENSHTEIN_DISTANCE = Field(
    "Analytics", "LevenshteinDistance", "int", 2, 1, 4,
    help="Distance for soft comparison.")
ANALYTICS_SKIP_FIRST_RESULTS = Field(
    "Analytics", "SkipFirstResults", "int", 1, 0, 9,
    help="Reads held back before Detected.")
ANALYTICS_USE_RAW_RESULTS = Field(
    "Analytics", "UseRawResults", "bool", False,
    help="Send an Updated for every read.")

PLATES_ALPHABET = Field(
    "Plates", "Alphabet", "choice", "latin", choices=("latin", "native"),
    help="Write processed plates in Latin letters A123BC77 (latin) or in "
         "the script of the fitting template: Cyrillic А123ВС77 for a "
         "Russian plate (native).")
PLATES_TEMPLATES = Field(
    "Plates", "Templates", "str", plates.DEFAULT_TEMPLATES,
    parser=plates.parseTemplates, lines=True,
    help="Plate layouts, most important first: "
         "name[(alphabet)]:pattern; ... (docs/plates.rst).")

JOURNAL_PATH = Field(
    "Journal", "Path", "str", "journal",
    help="Event journal folder (SQLite + screenshots), relative to the "
         "settings file; empty = no journal.")
JOURNAL_KEEP_DAYS = Field(
    "Journal", "KeepDays", "float", 30.0, 0.01, 3650.0,
    help="Events older than this are deleted.")
JOURNAL_MAX_MEGABYTES = Field(
    "Journal", "MaxMegabytes", "float", 1024.0, 1.0, 1048576.0,
    help="Database and screenshots stay under this; oldest go first.")

SYSTEM_SYSTEM_ID = Field(
    "System", "SystemId", "int", 1, 0, 2 ** 31 - 1,
    help="Id of this server in every event.")
SYSTEM_TEST_MODE = Field(
    "System", "TestMode", "bool", False,
    help="Mark every event with TestMode=Enabled.")

def _brokerText(text: str) -> str:
    """Check C{[Mqtt] Broker} the way the broker client will read it."""
    if text:
        from numberok.mqtt.broker import parseBroker
        parseBroker(text)  # BrokerError is a ValueError naming the problem
    return text


def _topicPrefix(text: str) -> str:
    """Check C{[Mqtt] TopicPrefix}: plain levels, no wildcard."""
    from numberok.mqtt.topics import checkPrefix
    return checkPrefix(text)


def _topicFilter(text: str) -> str:
    """Check C{[Mqtt] Reads}: a valid MQTT topic filter, or empty."""
    from numberok.mqtt.topics import checkFilter
    return checkFilter(text)


MQTT_BROKER = Field(
    "Mqtt", "Broker", "str", "", parser=_brokerText,
    help="MQTT broker as a Twisted client endpoint: "
         "tcp:host=H:port=1883 or tls:host=H:port=8883; empty = off.")
MQTT_CLIENT_ID = Field(
    "Mqtt", "ClientId", "str", "",
    help="MQTT client id; empty = numberok-<SystemId>.")
MQTT_USERNAME = Field("Mqtt", "Username", "str", "", help="MQTT user name.")
MQTT_PASSWORD = Field("Mqtt", "Password", "str", "", help="MQTT password.")
MQTT_TOPIC_PREFIX = Field(
    "Mqtt", "TopicPrefix", "str", "numberok", parser=_topicPrefix,
    help="First level of every topic numberok publishes or reads.")
MQTT_PUBLISH = Field(
    "Mqtt", "Publish", "choice", "lost", choices=("none", "lost", "all"),
    help="Events published to the broker: none, Lost only, or all.")
MQTT_PICTURES = Field(
    "Mqtt", "Pictures", "bool", True,
    help="Include the event's JPEG (base64) in each message.")
MQTT_QOS = Field("Mqtt", "QoS", "int", 1, 0, 2,
                 help="MQTT quality of service.")
MQTT_COLLECT = Field(
    "Mqtt", "Collect", "bool", False,
    help="Subscribe to <prefix>/+/events/# and serve other instances' "
         "events here.")
MQTT_READS = Field(
    "Mqtt", "Reads", "str", "", parser=_topicFilter,
    help="Topic filter carrying raw reads (ingest JSON or OpenALPR); "
         "empty = off.")

CAMERAS_TOKEN = Field(
    "Cameras", "Token", "str", "", parser=parseCameraToken,
    help="Token cameras put in the push URL (?token=) when they cannot "
         "send Basic credentials; empty = Basic only.  At least 16 "
         "characters: letters, digits, - . _ ~.")

ADMIN_PASSWORD_HASH = Field(
    "Admin", "PasswordHash", "str", "", parser=parsePasswordHash,
    help="Salted PBKDF2 hash of the admin password; set it with "
         "numberok-passwd, never by hand.")

ZONE_LOSS_INTERVAL_SEC = Field(
    "Zone", "LossIntervalSec", "float", 5.0, 0.5, 60.0,
    help="Seconds without a read before a track is Lost.")
ZONE_IN_DIRECTION = Field(
    "Zone", "InDirection", "choice", "down",
    choices=("down", "up", "left", "right"),
    help="Direction of travel in the frame that counts as In.")
ZONE_ROLE = Field(
    "Zone", "Role", "choice", "none", choices=("entry", "exit", "both", "none"),
    help="For visits: every passage here is an entry, an exit, In an "
         "entry and Out an exit (both), or neither (none).")


# -- section families (numberok.settings.families) --------------------------
# Every key of a family is a constant here whose section is the family's
# name; the family itself is declared below, after the schema is collected.

WEBHOOK_URL = Field(
    "Webhook", "Url", "str", "", parser=parseHttpUrl,
    help="Where events are sent: an http:// or https:// URL.")
WEBHOOK_METHOD = Field(
    "Webhook", "Method", "choice", "post", choices=("post", "put"),
    help="HTTP method of each delivery.")
WEBHOOK_HEADERS = Field(
    "Webhook", "Headers", "str", "", lines=True,
    help="Extra request headers, one 'Name: value' per line.")
WEBHOOK_USERNAME = Field(
    "Webhook", "Username", "str", "",
    help="Basic authentication user name; empty = none.")
WEBHOOK_PASSWORD = Field(
    "Webhook", "Password", "str", "", secret=True,
    help="Basic authentication password.")
WEBHOOK_TOKEN = Field(
    "Webhook", "Token", "str", "", secret=True,
    help="Bearer token (Authorization: Bearer ...); empty = none.")
WEBHOOK_SECRET = Field(
    "Webhook", "Secret", "str", "", secret=True,
    help="Key of the X-Numberok-Signature HMAC-SHA256 of each body; "
         "empty = unsigned.")
WEBHOOK_STATES = Field(
    "Webhook", "States", "str", ("Lost",),
    parser=parseWordList(("Detected", "Updated", "Lost")),
    help="Event states sent: a comma list of Detected, Updated, Lost.")
WEBHOOK_CHANNELS = Field(
    "Webhook", "Channels", "str", (), parser=parseNumberList(0, 1023),
    help="Channels whose events are sent (comma list); empty = all.")
WEBHOOK_ZONES = Field(
    "Webhook", "Zones", "str", (), parser=parseNumberList(0, 3),
    help="Zones whose events are sent (comma list); empty = all.")
WEBHOOK_PICTURES = Field(
    "Webhook", "Pictures", "choice", "none",
    choices=("none", "url", "inline"),
    help="Pictures in the body: none, a URL to the journal's picture, or "
         "inline base64.")
WEBHOOK_TIMEOUT_SEC = Field(
    "Webhook", "TimeoutSec", "float", 10.0, 1.0, 120.0,
    help="Seconds to wait for the receiver's answer.")

GATE_URL = Field(
    "Gate", "Url", "str", "", parser=parseHttpUrl,
    help="The relay or barrier controller's URL (http:// or https://).")
GATE_METHOD = Field(
    "Gate", "Method", "choice", "get", choices=("get", "post", "put"),
    help="HTTP method of the open request.")
GATE_BODY = Field(
    "Gate", "Body", "str", "",
    help="Request body template; empty = no body.")
GATE_WHEN = Field(
    "Gate", "When", "choice", "allow", choices=("allow", "any", "never"),
    help="What opens it: an allow-list hit, any plate, or never.")
GATE_MOVEMENT = Field(
    "Gate", "Movement", "choice", "in", choices=("in", "any"),
    help="Movement that opens it: In only, or any.")
GATE_TIMEOUT_SEC = Field(
    "Gate", "TimeoutSec", "float", 2.0, 0.1, 30.0,
    help="Seconds to wait for the device's answer.")
GATE_RETRY_WITHIN_SEC = Field(
    "Gate", "RetryWithinSec", "float", 3.0, 0.0, 30.0,
    help="A failed open is retried only this long after the decision "
         "(a late open is worse than none).")

LISTS_SHARE = Field(
    "Lists", "Share", "choice", "none",
    choices=("none", "publish", "subscribe"),
    help="Known-plate lists over the broker: publish this instance's lists "
         "(the central office), subscribe to the central office's (a "
         "site), or none.")

CHANNEL_NAME = Field(
    "Channel", "Name", "str", "",
    help="A name for the camera channel, shown on the page and sent as "
         "ChannelName.", parser=checkChannelName)


def constantName(field: Field) -> str:
    """
    The name of C{field}'s constant here: C{NetServer.Port} is
    C{NETSERVER_PORT}, C{Mqtt.QoS} is C{MQTT_QOS}.
    """
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", field.key)
    return "%s_%s" % (field.section.upper(), words.upper())


_ALL = tuple(value for value in dict(globals()).values()
             if isinstance(value, Field))

_FAMILY_NAMES = ("Zone", "Webhook", "Gate", "Channel")

SCHEMA: tuple[Field, ...] = tuple(f for f in _ALL
                                  if f.section not in _FAMILY_NAMES)
"""The keys of the named sections, in the order of the default file."""

ZONE_SCHEMA: tuple[Field, ...] = tuple(f for f in _ALL if f.section == "Zone")
"""The keys of every C{[Zone:<channel>:<zone>]} section."""

FIELDS: dict[str, Field] = {f.name: f for f in SCHEMA}
ZONE_FIELDS: dict[str, Field] = {f.key: f for f in ZONE_SCHEMA}

MAX_CHANNEL = 1023
"""The highest channel number, here and for every source."""
MAX_ZONE = 3
ZONE_SECTION = re.compile(r"^Zone:(\d{1,4}):([0-%d])$" % (MAX_ZONE,))


def zoneSection(channel: int, zone: int) -> str:
    """The section name of a zone: C{Zone:<channel>:<zone>}."""
    return "Zone:%d:%d" % (channel, zone)


def _checkWebhook(section: SectionSettings) -> dict[str, str]:
    errors = {}
    if not section[WEBHOOK_URL]:
        errors[WEBHOOK_URL.key] = "a webhook needs a Url"
    if bool(section[WEBHOOK_USERNAME]) != bool(section[WEBHOOK_PASSWORD]):
        errors[WEBHOOK_PASSWORD.key] = ("Username and Password go together "
                                        "(Basic authentication)")
    if section[WEBHOOK_TOKEN] and section[WEBHOOK_USERNAME]:
        errors[WEBHOOK_TOKEN.key] = ("choose Basic (Username/Password) or "
                                     "a bearer Token, not both")
    if not section[WEBHOOK_STATES]:
        errors[WEBHOOK_STATES.key] = "name at least one state"
    try:
        parseHeaders(section[WEBHOOK_HEADERS])
    except ValueError as e:
        errors[WEBHOOK_HEADERS.key] = str(e)
    return errors


def _checkGate(section: SectionSettings) -> dict[str, str]:
    if section[GATE_WHEN] != "never" and not section[GATE_URL]:
        return {GATE_URL.key: "a gate that opens needs a Url "
                              "(or When = never)"}
    return {}


def _channelInRange(ident: str) -> str:
    if int(ident.split(":")[0]) > MAX_CHANNEL:
        return "channel must be 0..%d" % (MAX_CHANNEL,)
    return ""


def _familyOf(name: str, **kw) -> Family:
    return Family(name, fields=tuple(f for f in _ALL if f.section == name),
                  **kw)


WEBHOOK_FAMILY = _familyOf(
    "Webhook", ident=r"[A-Za-z0-9_-]{1,40}",
    identHelp="[Webhook:<name>] with a name of 1..40 letters, digits, "
              "- and _",
    check=_checkWebhook)
GATE_FAMILY = _familyOf(
    "Gate", ident=r"\d{1,4}:[0-%d]" % (MAX_ZONE,),
    identHelp="[Gate:<channel>:<zone>] with zone 0..%d" % (MAX_ZONE,),
    check=_checkGate, identCheck=_channelInRange)
CHANNEL_FAMILY = _familyOf(
    "Channel", ident=r"\d{1,4}",
    identHelp="[Channel:<n>] with n 0..%d" % (MAX_CHANNEL,),
    identCheck=_channelInRange)

FAMILIES: dict[str, Family] = {f.name: f for f in (
    WEBHOOK_FAMILY, GATE_FAMILY, CHANNEL_FAMILY)}
"""Every section family but zones, by name."""
