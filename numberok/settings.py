"""
The settings model: every key of the settings file with its type, range and
default in one place (L{SCHEMA}), validation that reports every bad field at
once, loading, and a L{SettingsStore} whose observers let a change reach the
running parts without globals.

The file is INI with NumberOk's own key names (see etc/numberok.ini).  Zones
are sections named C{[Zone:<channel>:<zone>]}; a zone not listed uses the
zone defaults below.  Other unknown sections are kept untouched and ignored.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from numberok import plates

ZONE_SECTION = re.compile(r"^Zone:(\d{1,4}):([0-3])$")
MAX_CHANNEL = 1023


class SettingsError(Exception):
    """
    Invalid settings.  C{errors} maps C{"Section.Key"} to a message naming
    the allowed values; C{str()} gives one line per field, prefixed by the
    file when there is one.
    """

    def __init__(self, errors: Mapping[str, str], path: Optional[str] = None):
        self.errors = dict(errors)
        self.path = path
        super().__init__(self._describe())

    def _describe(self) -> str:
        prefix = "%s: " % (self.path,) if self.path else ""
        lines = []
        for name, message in sorted(self.errors.items()):
            section, _, key = name.rpartition(".")
            where = "[%s] %s" % (section, key) if section else name
            lines.append("%s%s: %s" % (prefix, where, message))
        return "\n".join(lines)


@dataclass(frozen=True)
class Field:
    """
    One key of the settings file.

    @ivar kind: C{"bool"}, C{"int"}, C{"float"}, C{"choice"}, C{"cidrs"} or
        C{"str"}.
    @ivar parser: for C{"str"} fields with a grammar of their own (plate
        templates, say): called with the stripped text, returns the typed
        value or raises L{ValueError} with a message for the user.
    """

    section: str
    key: str
    kind: str
    default: Any
    minimum: Any = None
    maximum: Any = None
    choices: tuple[str, ...] = ()
    help: str = ""
    parser: Optional[Callable[[str], Any]] = None

    @property
    def name(self) -> str:
        return "%s.%s" % (self.section, self.key)

    def describe(self) -> str:
        """The allowed values, for error messages and the admin page."""
        if self.kind == "bool":
            return "0 or 1"
        if self.kind in ("int", "float"):
            return "%s..%s" % (_format(self.minimum), _format(self.maximum))
        if self.kind == "choice":
            return " | ".join(self.choices)
        if self.kind == "cidrs":
            return "comma-separated addresses or CIDR networks, empty = anyone"
        return "text"

    def parse(self, raw: Any) -> Any:
        """
        Turn a file or form value into a typed one.

        @raise ValueError: with a message naming the allowed values.
        """
        if self.kind == "bool":
            return _parseBool(raw)
        if self.kind in ("int", "float"):
            return self._parseNumber(raw)
        text = _text(raw)
        if self.kind == "choice":
            if text.lower() not in self.choices:
                raise ValueError("%r is not one of %s"
                                 % (text, self.describe()))
            return text.lower()
        if self.kind == "cidrs":
            return parseNetworks(text)
        if self.parser is not None:
            return self.parser(text)
        return text

    def _parseNumber(self, raw: Any) -> Any:
        if isinstance(raw, bool):
            raise ValueError("expected a number in %s" % (self.describe(),))
        try:
            if self.kind == "int":
                if isinstance(raw, float) and not raw.is_integer():
                    raise ValueError
                value = int(raw) if not isinstance(raw, str) else int(
                    raw.strip(), 10)
            else:
                value = float(raw)
                if value != value or value in (float("inf"), float("-inf")):
                    raise ValueError
        except (TypeError, ValueError):
            raise ValueError("%r is not %s number in %s" % (
                raw, "a whole" if self.kind == "int" else "a",
                self.describe())) from None
        if not self.minimum <= value <= self.maximum:
            raise ValueError("%s is out of range %s"
                             % (_format(value), self.describe()))
        return value

    def render(self, value: Any) -> str:
        """The value as it is written to the settings file."""
        if self.kind == "bool":
            return "1" if value else "0"
        if self.kind == "cidrs":
            return ", ".join(
                str(n.network_address) if n.prefixlen == n.max_prefixlen
                else str(n) for n in value)
        return _format(value)


def _format(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError("expected text, got %r" % (raw,))
    return raw.strip()


def _parseBool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    raise ValueError("%r is not 0 or 1" % (raw,))


def parseNetworks(text: str) -> tuple:
    """
    Parse C{AllowedClients}: comma-separated IPv4/IPv6 addresses or CIDR
    networks.

    @raise ValueError: naming the first entry that is not one.
    """
    networks = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError("%r is not an IP address or CIDR network"
                             % (item,)) from None
    return tuple(networks)


SCHEMA: tuple[Field, ...] = (
    Field("NetServer", "Enable", "bool", True,
          help="Listen for NumberOk clients."),
    Field("NetServer", "Port", "int", 7700, 1, 65535,
          help="TCP port of the event server."),
    Field("NetServer", "MaxConnections", "int", 4, 1, 4,
          help="Clients connected at once; the next one is closed."),
    Field("NetServer", "AttachScreenshotsToEvents", "bool", False,
          help="Send the JPEG of the best read with each event."),
    Field("NetServer", "AttachedScreenshotsQuality", "int", 50, 10, 100,
          help="JPEG quality of attached screenshots."),
    Field("NetServer", "SendLostOnly", "bool", False,
          help="Send only Lost events."),
    Field("NetServer", "AllowedClients", "cidrs", (),
          help="Who may connect; empty means anyone."),
    Field("Analytics", "SoftComparison", "bool", True,
          help="Join reads to a track within a Levenshtein distance."),
    Field("Analytics", "LevenshteinDistance", "int", 2, 1, 4,
          help="Distance for soft comparison."),
    Field("Analytics", "SkipFirstResults", "int", 1, 0, 9,
          help="Reads held back before Detected."),
    Field("Analytics", "UseRawResults", "bool", False,
          help="Send an Updated for every read."),
    Field("Plates", "Alphabet", "choice", "latin",
          choices=("latin", "native"),
          help="Write processed plates in Latin letters (A123BC77) or in "
               "the script of the fitting template (А123ВС77)."),
    Field("Plates", "Templates", "str", plates.DEFAULT_TEMPLATES,
          parser=plates.parseTemplates,
          help="Plate layouts, most important first: "
               "name[(alphabet)]:pattern; ... (docs/plates.rst)."),
    Field("Journal", "Path", "str", "journal",
          help="Event journal folder (SQLite + screenshots), relative to "
               "the settings file; empty = no journal."),
    Field("Journal", "KeepDays", "float", 30.0, 0.01, 3650.0,
          help="Events older than this are deleted."),
    Field("Journal", "MaxMegabytes", "float", 1024.0, 1.0, 1048576.0,
          help="Database and screenshots stay under this; oldest go first."),
    Field("System", "SystemId", "int", 1, 0, 2 ** 31 - 1,
          help="Id of this server in every event."),
    Field("System", "TestMode", "bool", False,
          help="Mark every event with TestMode=Enabled."),
    Field("Mqtt", "Broker", "str", "",
          help="MQTT broker as a Twisted client endpoint: "
               "tcp:host=H:port=1883 or tls:host=H:port=8883; empty = off."),
    Field("Mqtt", "ClientId", "str", "",
          help="MQTT client id; empty = numberok-<SystemId>."),
    Field("Mqtt", "Username", "str", "", help="MQTT user name."),
    Field("Mqtt", "Password", "str", "", help="MQTT password."),
    Field("Mqtt", "TopicPrefix", "str", "numberok",
          help="First level of every topic numberok publishes or reads."),
    Field("Mqtt", "Publish", "choice", "lost",
          choices=("none", "lost", "all"),
          help="Events published to the broker: none, Lost only, or all."),
    Field("Mqtt", "Pictures", "bool", True,
          help="Include the event's JPEG (base64) in each message."),
    Field("Mqtt", "QoS", "int", 1, 0, 2, help="MQTT quality of service."),
    Field("Mqtt", "Collect", "bool", False,
          help="Subscribe to <prefix>/+/events/# and serve other "
               "instances' events here."),
    Field("Mqtt", "Reads", "str", "",
          help="Topic filter carrying raw reads (ingest JSON or OpenALPR); "
               "empty = off."),
    Field("Cameras", "Token", "str", "",
          help="Token cameras put in the push URL (?token=) when they "
               "cannot send Basic credentials; empty = Basic only."),
    Field("Admin", "PasswordHash", "str", "",
          help="Salted PBKDF2 hash of the admin password; set it with "
               "numberok-passwd, never by hand.",
          parser=lambda text: parsePasswordHash(text)),
)

PASSWORD_HASH = re.compile(
    r"^pbkdf2_sha256\$(\d{1,9})\$([A-Za-z0-9+/=]{8,200})\$"
    r"([A-Za-z0-9+/=]{20,200})$")


def parsePasswordHash(text: str) -> str:
    """
    Check the shape of C{[Admin] PasswordHash}: empty (no password) or
    C{pbkdf2_sha256$<iterations>$<salt>$<hash>} as C{numberok-passwd}
    writes it.  A hand-typed plain password here must not silently become
    "the password is this hash".
    """
    if text and not PASSWORD_HASH.match(text):
        raise ValueError("not a hash made by numberok-passwd "
                         "(pbkdf2_sha256$iterations$salt$hash)")
    return text

ZONE_SCHEMA: tuple[Field, ...] = (
    Field("Zone", "LossIntervalSec", "float", 5.0, 0.5, 60.0,
          help="Seconds without a read before a track is Lost."),
    Field("Zone", "InDirection", "choice", "down",
          choices=("down", "up", "left", "right"),
          help="Direction of travel in the frame that counts as In."),
)

FIELDS: dict[str, Field] = {f.name: f for f in SCHEMA}
ZONE_FIELDS: dict[str, Field] = {f.key: f for f in ZONE_SCHEMA}


@dataclass(frozen=True, slots=True)
class ZoneSettings:
    """The settings of one channel/zone."""

    lossInterval: float = 5.0
    inDirection: str = "down"


@dataclass(frozen=True)
class Settings:
    """
    One immutable, valid set of settings.

    @ivar values: C{"Section.Key"} to typed value, for every L{SCHEMA} field.
    @ivar zones: C{(channel, zone)} to L{ZoneSettings} for listed zones.
    @ivar extra: sections this version does not know, kept for saving.
    """

    values: Mapping[str, Any] = field(
        default_factory=lambda: {f.name: f.default for f in SCHEMA})
    zones: Mapping[tuple[int, int], ZoneSettings] = field(
        default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def zone(self, channel: int, zone: int) -> ZoneSettings:
        """The settings of a zone, defaults when it is not listed."""
        return self.zones.get((channel, zone)) or DEFAULT_ZONE

    def withChanges(self, changes: Mapping[str, Any]) -> "Settings":
        """
        A new L{Settings} with C{changes} applied, validated all at once.

        @param changes: C{"Section.Key"} to a raw value (text from a form or
            a file, or a JSON scalar).  Zone keys are
            C{"Zone:<c>:<z>.LossIntervalSec"}; C{"Zone:<c>:<z>"} mapped to
            L{None} removes a zone.
        @raise SettingsError: listing every invalid field; nothing applies.
        """
        values = dict(self.values)
        zones = {k: dict(lossInterval=v.lossInterval,
                         inDirection=v.inDirection)
                 for k, v in self.zones.items()}
        errors: dict[str, str] = {}
        for name, raw in changes.items():
            section, _, key = name.rpartition(".")
            zoneMatch = ZONE_SECTION.match(section or name)
            if zoneMatch:
                where = (int(zoneMatch.group(1)), int(zoneMatch.group(2)))
                if where[0] > MAX_CHANNEL:
                    errors[name] = "channel must be 0..%d" % (MAX_CHANNEL,)
                    continue
                if not section:
                    if raw is None:
                        zones.pop(where, None)
                    else:
                        zones.setdefault(where, _zoneDefaults())
                    continue
                zoneField = ZONE_FIELDS.get(key)
                if zoneField is None:
                    errors[name] = "unknown key (known: %s)" % (
                        ", ".join(ZONE_FIELDS),)
                    continue
                try:
                    parsed = zoneField.parse(raw)
                except ValueError as e:
                    errors[name] = str(e)
                    continue
                attribute = ("lossInterval" if key == "LossIntervalSec"
                             else "inDirection")
                zones.setdefault(where, _zoneDefaults())[attribute] = parsed
                continue
            schemaField = FIELDS.get(name)
            if schemaField is None:
                errors[name] = "unknown setting"
                continue
            try:
                values[name] = schemaField.parse(raw)
            except ValueError as e:
                errors[name] = str(e)
        if errors:
            raise SettingsError(errors)
        return Settings(values, {k: ZoneSettings(**v)
                                 for k, v in sorted(zones.items())})


def _zoneDefaults() -> dict[str, Any]:
    return dict(lossInterval=DEFAULT_ZONE.lossInterval,
                inDirection=DEFAULT_ZONE.inDirection)


DEFAULT_ZONE = ZoneSettings()


def parseText(text: str, path: Optional[str] = None) -> Settings:
    """
    Parse settings-file text.

    @raise SettingsError: for a malformed file (naming the line), an unknown
        key in a known section, or any invalid value; all fields at once.
    """
    parser = configparser.ConfigParser(
        inline_comment_prefixes=(";", "#"), interpolation=None,
        strict=True, empty_lines_in_values=False)
    parser.optionxform = str  # keep NumberOk's key case
    try:
        parser.read_string(text, source=path or "<settings>")
    except configparser.Error as e:
        message = " ".join(str(e).split())
        raise SettingsError({"file": "malformed: %s" % (message,)},
                            path) from None
    known = {f.section for f in SCHEMA}
    changes: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for section in parser.sections():
        if ZONE_SECTION.match(section):
            changes[section] = {}
            for key, value in parser.items(section):
                changes["%s.%s" % (section, key)] = value
        elif section in known:
            for key, value in parser.items(section):
                name = "%s.%s" % (section, key)
                if name not in FIELDS:
                    errors[name] = "unknown key (known in [%s]: %s)" % (
                        section, ", ".join(f.key for f in SCHEMA
                                           if f.section == section))
                else:
                    changes[name] = value
        elif section.startswith("Zone"):
            errors[section] = ("a zone section is named [Zone:<channel>:"
                               "<zone>] with zone 0..3")
    try:
        settings = Settings().withChanges(changes)
    except SettingsError as e:
        errors.update(e.errors)
    if errors:
        raise SettingsError(errors, path)
    return settings


def load(path: str) -> Settings:
    """
    Read the settings file at C{path}.

    @raise SettingsError: when it cannot be read or is invalid.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError({"file": "cannot be read: %s" % (e,)},
                            path) from None
    return parseText(text, path)


Observer = Callable[[Settings, Settings], None]


class SettingsStore:
    """
    The current settings of a running server and who wants to hear of
    changes.  Parts receive the store, read C{current} when they need a
    value, and register an observer when they must act on a change (rebind
    a port, restart a timer).

    @ivar path: the settings file, or L{None} for settings kept in memory.
    """

    def __init__(self, settings: Optional[Settings] = None,
                 path: Optional[str] = None) -> None:
        self.current = settings or Settings()
        self.path = path
        self._observers: list[Observer] = []

    def addObserver(self, observer: Observer) -> None:
        """Call C{observer(old, new)} after every change."""
        self._observers.append(observer)

    def removeObserver(self, observer: Observer) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def replace(self, settings: Settings) -> None:
        """
        Make C{settings} current and tell every observer.  An observer that
        raises is logged and does not stop the others.
        """
        old, self.current = self.current, settings
        for observer in list(self._observers):
            try:
                observer(old, settings)
            except Exception:
                from twisted.logger import Logger
                Logger().failure("settings observer {observer!r} failed",
                                 observer=observer)

    def update(self, changes: Mapping[str, Any]) -> Settings:
        """
        Validate and apply C{changes} (see L{Settings.withChanges}).

        @raise SettingsError: nothing changes.
        """
        settings = self.current.withChanges(changes)
        self.replace(settings)
        return settings

    def save(self, settings: Settings) -> None:
        """
        Write C{settings} to the file (when there is one), then make them
        current.  Blocking: a running server calls L{saveFile} in a thread
        and L{replace} in the reactor thread instead.

        @raise SettingsError: the file could not be updated; nothing changed.
        """
        if self.path is not None:
            saveFile(self.path, self.current, settings)
        self.replace(settings)


# -- saving: edit the user's file in place ---------------------------------

_KEY_LINE = re.compile(r"^(\s*)([^=:]*?)(\s*[=:][ \t]?)(.*?)(\s*)$")
_SECTION_LINE = re.compile(r"^\[(.+)\]$")
_INLINE_COMMENT = re.compile(r"(?<=\s)[;#]")
_COMMENT_PREFIXES = (";", "#")


def _differences(base: Settings, new: Settings) -> dict[str, Any]:
    """
    What changed from C{base} to C{new}, as C{withChanges} input with every
    value already rendered as file text.  Only these keys are written, so a
    key the user edited in the file by hand since (or a password set with
    C{numberok-passwd} meanwhile) is not overwritten with a stale value.
    """
    changes: dict[str, Any] = {}
    for f in SCHEMA:
        if base[f.name] != new[f.name]:
            changes[f.name] = f.render(new[f.name])
    for where in base.zones:
        if where not in new.zones:
            changes["Zone:%d:%d" % where] = None
    for where, zone in new.zones.items():
        section = "Zone:%d:%d" % where
        old = base.zones.get(where)
        if old is None:
            changes[section] = {}
        for f in ZONE_SCHEMA:
            value = getattr(zone, _ZONE_ATTRIBUTES[f.key])
            if old is None or getattr(old, _ZONE_ATTRIBUTES[f.key]) != value:
                changes["%s.%s" % (section, f.key)] = f.render(value)
    return changes


_ZONE_ATTRIBUTES = {"LossIntervalSec": "lossInterval",
                    "InDirection": "inDirection"}


def _splitEnding(line: str) -> tuple[str, str]:
    body = line.rstrip("\r\n")
    return body, line[len(body):]


def _sectionName(line: str) -> Optional[str]:
    body = _splitEnding(line)[0]
    comment = _INLINE_COMMENT.search(body)
    if comment:
        body = body[:comment.start()]
    match = _SECTION_LINE.match(body.strip())
    return match.group(1) if match else None


def _isNothing(line: str) -> bool:
    """A blank or full-line comment line."""
    stripped = line.strip()
    return not stripped or stripped.startswith(_COMMENT_PREFIXES)


def _rewriteValue(line: str, value: str) -> str:
    """C{line} (a C{Key = value ; comment} line) with C{value} in place,
    keeping indentation, spacing and the comment's column where it can."""
    body, ending = _splitEnding(line)
    comment = _INLINE_COMMENT.search(body)
    tail = ""
    if comment:
        body, tail = body[:comment.start()], body[comment.start():]
    indent, key, delimiter, old, space = _KEY_LINE.match(body).groups()
    if tail:
        space = " " * max(1, len(old) + len(space) - len(value))
    else:
        space = ""
    return indent + key + delimiter + value + space + tail + ending


def _editSection(lines: list[str], keys: dict[str, str],
                 remove: bool) -> list[str]:
    """
    One section's lines (its header first) with C{keys} rewritten or
    added after its last key; or, when C{remove}, without the section,
    keeping the comments after its last key (they usually introduce what
    follows).
    """
    if remove:
        last = max([i for i, line in enumerate(lines) if not _isNothing(line)],
                   default=0)
        return lines[last + 1:]
    out = [lines[0]]
    insertAt = 1
    keyIndent: Optional[int] = None
    dropping = False
    for line in lines[1:]:
        if not line.strip():
            keyIndent = None
            out.append(line)
            continue
        if _isNothing(line):
            out.append(line)
            continue
        indent = len(line) - len(line.lstrip())
        if keyIndent is not None and indent > keyIndent:
            # A continuation line of the key above.
            if not dropping:
                out.append(line)
                insertAt = len(out)
            continue
        keyIndent, dropping = indent, False
        body = _splitEnding(line)[0]
        comment = _INLINE_COMMENT.search(body)
        match = _KEY_LINE.match(body[:comment.start()] if comment else body)
        key = match.group(2).strip() if match else None
        if key in keys:
            out.append(_rewriteValue(line, keys.pop(key)))
            dropping = True
        else:
            out.append(line)
        insertAt = len(out)
    out[insertAt:insertAt] = ["%s = %s\n" % item for item in keys.items()]
    return out


def updateText(text: str, base: Settings, new: Settings) -> str:
    """
    The settings-file text C{text} changed by what differs between C{base}
    (what the file was loaded as) and C{new}: changed keys are rewritten in
    place, keeping their comments; keys that were absent are added to their
    section; new zones become sections at the end; removed zones lose
    their section.  Everything else -- comments, blank lines, unknown
    sections, the order -- stays as the user wrote it.

    @raise SettingsError: C{text} is not valid now (edited by hand since it
        was loaded), or the edit would not read back as intended.
    """
    expectedFrom = parseText(text)
    changes = _differences(base, new)
    expected = expectedFrom.withChanges(changes)
    edits: dict[str, dict[str, str]] = {}
    removed = set()
    for name, value in changes.items():
        if value is None:
            removed.add(name)
        elif isinstance(value, dict):
            edits.setdefault(name, {})
        else:
            section, _, key = name.rpartition(".")
            edits.setdefault(section, {})[key] = value
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    headers = [i for i, line in enumerate(lines)
               if _sectionName(line) is not None]
    bounds = headers + [len(lines)]
    out = lines[:bounds[0]]
    for i, start in enumerate(headers):
        name = _sectionName(lines[start])
        out += _editSection(lines[start:bounds[i + 1]],
                            edits.pop(name, {}), name in removed)
    for section, keys in edits.items():
        if out and out[-1].strip():
            out.append("\n")
        out.append("[%s]\n" % (section,))
        out += ["%s = %s\n" % item for item in keys.items()]
    result = "".join(out)
    try:
        readBack = parseText(result)
    except SettingsError as e:
        readBack = e
    if readBack != expected:
        raise SettingsError({"file": "the change cannot be written to this "
                             "file safely; nothing was written"})
    return result


def writeAtomically(path: str, text: str) -> None:
    """
    Replace the file at C{path} with C{text} so that a crash at any moment
    leaves either the old file or the new one: write a temporary file in
    the same directory, fsync it, rename it over the old one, fsync the
    directory.  A symbolic link is followed, so the link stays a link.
    The old file's permission bits are kept (a new file gets 0600: it may
    hold the password hash).
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    try:
        mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o600
    fd, temporary = tempfile.mkstemp(
        dir=directory, prefix="." + os.path.basename(target) + ".",
        suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    try:
        dirfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dirfd)
    except OSError:
        pass
    finally:
        os.close(dirfd)


def saveFile(path: str, base: Settings, new: Settings) -> None:
    """
    Write the difference between C{base} and C{new} into the settings file
    at C{path} (see L{updateText}), atomically (L{writeAtomically}).
    Blocking: call it in a thread from a running server.

    @raise SettingsError: with key C{"file"}; the file is untouched.
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsError({"file": "cannot be read: %s" % (e,)},
                            path) from None
    try:
        result = updateText(text, base, new)
    except SettingsError as e:
        raise SettingsError(e.errors, path) from None
    try:
        writeAtomically(path, result)
    except OSError as e:
        raise SettingsError({"file": "cannot be written: %s" % (e,)},
                            path) from None
