"""
One key of the settings file (L{Field}): its type, range and default, how a
file or form value becomes a typed one, how a typed value is written back,
and the errors that name what was wrong (L{SettingsError} and the two file
errors of a save).

Every message names the allowed values and quotes the offending value
shortened (L{quote}), so a 5,000-digit number or a pasted paragraph gives
one readable line, never Python's own wording.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional


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


class SettingsFileError(SettingsError):
    """
    A save failed because of the settings file, not because of the change:
    it cannot be read or written.  C{errors} is C{{"file": message}}, so it
    is never mistaken for an error of a field the request named.
    """

    def __init__(self, message: str, path: Optional[str] = None):
        super().__init__({"file": message}, path)


class SettingsFileInvalid(SettingsFileError):
    """
    A save found the settings file on disk invalid -- edited by hand since
    it was loaded.  Nothing was written.  C{fileErrors} names the file's
    bad keys (C{"Section.Key"} to message); C{errors} stays
    C{{"file": message}} with those keys in the message.
    """

    def __init__(self, fileErrors: Mapping[str, str], path: Optional[str]):
        self.fileErrors = dict(fileErrors)
        details = "; ".join(
            "%s: %s" % (_where(name), message)
            for name, message in sorted(self.fileErrors.items()))
        super().__init__(
            "is invalid on disk (edited by hand?), so nothing was saved; "
            "fix it or undo the edit, then save again -- %s" % (details,),
            path)


def _where(name: str) -> str:
    section, _, key = name.rpartition(".")
    return "[%s] %s" % (section, key) if section else name


@dataclass(frozen=True)
class Field:
    """
    One key of the settings file.

    @ivar kind: C{"bool"}, C{"int"}, C{"float"}, C{"choice"}, C{"cidrs"} or
        C{"str"}.
    @ivar parser: for C{"str"} fields with a grammar of their own (plate
        templates, say): called with the stripped text, returns the typed
        value or raises L{ValueError} with a message for the user.
    @ivar lines: the text may span lines (a new line is a separator of its
        grammar); any other control character is refused in every field.
    @ivar secret: a password, token or key: the JSON API never shows its
        value, only whether it is set.
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
    lines: bool = False
    secret: bool = False

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
        text = _text(raw, self.lines)
        if self.kind == "choice":
            if text.lower() not in self.choices:
                raise ValueError("%s is not one of %s"
                                 % (quote(text), self.describe()))
            return text.lower()
        if self.kind == "cidrs":
            return parseNetworks(text)
        if self.parser is not None:
            return self.parser(text)
        return text

    def _parseNumber(self, raw: Any) -> Any:
        problem = "%s is not %s number in %s" % (
            quote(raw), "a whole" if self.kind == "int" else "a",
            self.describe())
        if isinstance(raw, bool):
            raise ValueError(problem)
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
        except (TypeError, ValueError, OverflowError):
            raise ValueError(problem) from None
        if not self.minimum <= value <= self.maximum:
            raise ValueError("%s is out of range %s"
                             % (quote(value), self.describe()))
        return value

    def render(self, value: Any) -> str:
        """The value as it is written to the settings file."""
        if self.kind == "bool":
            return "1" if value else "0"
        if self.kind == "cidrs":
            return ", ".join(
                str(n.network_address) if n.prefixlen == n.max_prefixlen
                else str(n) for n in value)
        if type(value) is tuple:
            # Comma lists parsed by parseWordList / parseNumberList (a
            # parser's own value type renders itself through str()).
            return ", ".join(str(v) for v in value)
        return _format(value)


QUOTE_LENGTH = 24
"""Longer values are quoted by their start and their length."""


def quote(raw: Any) -> str:
    """
    C{raw} for an error message: C{repr} for short values (control
    characters show escaped), the start and the length for long ones --
    C{'1234567890…' (5000 digits)} -- and never a conversion that fails for
    integers too long to print.
    """
    if isinstance(raw, int) and not isinstance(raw, bool):
        digits = _digits(raw)
        if digits <= QUOTE_LENGTH:
            return str(raw)
        head = str(abs(raw) // 10 ** (digits - 10))
        return "%s%s… (%d digits)" % ("-" if raw < 0 else "", head, digits)
    if isinstance(raw, str) and len(raw) > QUOTE_LENGTH:
        unit = "digits" if raw.isascii() and raw.isdigit() else "characters"
        return "%s (%d %s)" % (repr(raw[:10])[:-1] + "…'", len(raw), unit)
    if isinstance(raw, float):
        return _format(raw)
    text = repr(raw)
    return text if len(text) <= 2 * QUOTE_LENGTH else text[:10] + "…"


def _digits(number: int) -> int:
    """Decimal digits of C{number}, without C{str()} (which refuses more
    than 4,300 of them)."""
    number = abs(number)
    digits = max(1, int(number.bit_length() * 0.30103))
    while digits > 1 and number < 10 ** (digits - 1):
        digits -= 1
    while number >= 10 ** digits:
        digits += 1
    return digits


def _format(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

MAX_TEXT_LENGTH = 1024
"""Characters of a text setting: far above any path, name or template
list, and short enough that no message or page line quoting it grows
without bound."""


def _text(raw: Any, lines: bool = False) -> str:
    """
    Form or file text, stripped, refused when it is longer than
    L{MAX_TEXT_LENGTH} or holds a control character (a new line is allowed
    where C{lines}): a setting is one line of the file, and a path or name
    with a new line breaks whoever uses it later.
    """
    if not isinstance(raw, str):
        raise ValueError("expected text, got %s" % (quote(raw),))
    text = raw.strip()
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueError("%s is longer than %d characters"
                         % (quote(text), MAX_TEXT_LENGTH))
    for match in _CONTROL.finditer(text):
        if lines and match.group() == "\n":
            continue
        raise ValueError(
            "control character %s at position %d is not allowed; "
            "use one line of printable text"
            % (repr(match.group()), match.start() + 1))
    return text


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
    raise ValueError("%s is not 0 or 1" % (quote(raw),))


def parseNetworks(text: str) -> tuple:
    """
    Parse C{AllowedClients}: comma-separated IPv4/IPv6 addresses or CIDR
    networks.

    @raise ValueError: naming every entry that is not one.
    """
    networks, bad = [], []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            bad.append(quote(item))
    if len(bad) == 1:
        raise ValueError("%s is not an IP address or CIDR network" % bad[0])
    if bad:
        raise ValueError("%s are not IP addresses or CIDR networks"
                         % (", ".join(bad),))
    return tuple(networks)


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


def parseHttpUrl(text: str) -> str:
    """
    An C{http://} or C{https://} URL with a host, or empty (not set).
    Anything else -- C{file:}, C{ftp:}, a bare host -- is refused, so a
    webhook or a gate never sends a request where it was not meant to.
    """
    if not text:
        return text
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise ValueError("%s is not an http:// or https:// URL"
                         % (quote(text),))
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if not host or any(c.isspace() for c in text):
        raise ValueError("%s has no host, or has spaces" % (quote(text),))
    return text


def parseWordList(words: tuple[str, ...]) -> Callable[[str], tuple]:
    """
    A parser of a comma list whose items are each one of C{words} (matched
    without case, returned as spelt in C{words}); empty gives C{()}.
    """
    def parse(text: str) -> tuple:
        known = {w.lower(): w for w in words}
        out, bad = [], []
        for item in (i.strip() for i in text.split(",")):
            if not item:
                continue
            word = known.get(item.lower())
            if word is None:
                bad.append(quote(item))
            elif word not in out:
                out.append(word)
        if bad:
            raise ValueError("%s: each item must be one of %s"
                             % (", ".join(bad), ", ".join(words)))
        return tuple(out)
    return parse


def parseNumberList(low: int, high: int) -> Callable[[str], tuple]:
    """A parser of a comma list of whole numbers in C{low..high}; empty
    gives C{()} (meaning "all" where a filter takes it)."""
    def parse(text: str) -> tuple:
        out, bad = [], []
        for item in (i.strip() for i in text.split(",")):
            if not item:
                continue
            if item.isascii() and item.isdigit() and len(item) <= 6 \
                    and low <= int(item) <= high:
                if int(item) not in out:
                    out.append(int(item))
            else:
                bad.append(quote(item))
        if bad:
            raise ValueError("%s: each item must be a whole number in "
                             "%d..%d" % (", ".join(bad), low, high))
        return tuple(out)
    return parse
MIN_CAMERA_TOKEN_LENGTH = 16
"""The shortest C{[Cameras] Token} taken: with the URL-safe alphabet that
is 96 bits, out of reach of guessing behind the token throttle."""
CAMERA_TOKEN = re.compile(r"[A-Za-z0-9._~-]+\Z")


def parseCameraToken(text: str) -> str:
    """
    Check C{[Cameras] Token}: empty (Basic only), or at least
    L{MIN_CAMERA_TOKEN_LENGTH} characters of the URL-safe set (letters,
    digits, C{- . _ ~}), so that C{?token=T} is the token exactly as typed,
    with nothing to encode.
    """
    if text and (len(text) < MIN_CAMERA_TOKEN_LENGTH
                 or not CAMERA_TOKEN.match(text)):
        raise ValueError(
            "a token needs at least %d characters, only letters, digits "
            "and - . _ ~ (the admin page offers a generated one, as does "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
            % (MIN_CAMERA_TOKEN_LENGTH,))
    return text


HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
RESERVED_HEADERS = frozenset([
    "host", "content-length", "content-type", "transfer-encoding",
    "connection", "x-numberok-signature", "idempotency-key"])
"""Headers a webhook sets itself: C{[Webhook:<name>] Headers} may not
name them."""


def parseHeaders(text: str) -> tuple[tuple[str, str], ...]:
    """
    Extra HTTP headers: one C{Name: value} per line; blank lines are
    ignored.

    @raise ValueError: naming the first bad line (no colon, a name that is
        not an HTTP token, a header numberok sets itself).
    """
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not HEADER_NAME.match(name):
            raise ValueError("line %d: write 'Name: value'" % (number,))
        if name.lower() in RESERVED_HEADERS:
            raise ValueError("line %d: %s is set by numberok"
                             % (number, name))
        out.append((name, value.strip()))
    return tuple(out)
