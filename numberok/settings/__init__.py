"""
The settings model: every key of the settings file with its type, range and
default in one place, validation that reports every bad field at once,
loading and saving the file, and a L{SettingsStore} whose observers let a
change reach the running parts without globals.

The file is INI with NumberOk's own key names (see etc/numberok.ini).  Zones
are sections named C{[Zone:<channel>:<zone>]}; a zone not listed uses the
zone defaults.  Other unknown sections are kept untouched and ignored.

Modules, one job each:

 - L{fields}: L{Field} (one key: parse, check, render) and the errors.
 - L{keys}: one constant per key (C{NETSERVER_PORT}, C{ZONE_IN_DIRECTION}),
   which is the schema: L{SCHEMA} and L{ZONE_SCHEMA} are collected from
   them.  Look values up with them, C{settings[NETSERVER_PORT]}, so a typo
   fails at import; C{settings["NetServer.Port"]} works too.
 - L{values}: L{Settings}, the immutable valid value, and its zones.
 - L{editor}: the comment-keeping INI editor (lines in, lines out).
 - L{files}: reading, creating (mode 0600) and saving the file.
 - L{store}: L{SettingsStore}, observers and the save steps.

Why a hand-written editor and not C{configupdater} (evaluated, 4.1.1):
changing C{Port = 7700 ; the port our VMS expects} with C{configupdater}
drops the comment after the value; in a C{\\r\\n} file it writes the
changed and added lines with C{\\n}, leaving mixed endings; and a key added
to a section lands after the section's trailing blank line, glued to the
next header.  Those are the three things an operator's hand-kept file must
not suffer, and the editor here (about 150 lines, no dependency) keeps all
of them, proves each edit by reading the result back, and is covered by
the tests and a hypothesis property.  Unknown sections, permissions
(L{files.writeAtomically}) and atomic replacement do not depend on the
choice.
"""

from numberok.settings.fields import (PASSWORD_HASH, Field, SettingsError,
                                      SettingsFileError, SettingsFileInvalid,
                                      parseNetworks, parsePasswordHash)
from numberok.settings.files import (DEFAULT_FILE, SETTINGS_FILE_MODE,
                                     createDefaultFile, defaultText, load,
                                     parseText, saveFile, updateText,
                                     writeAtomically)
from numberok.settings.keys import (FIELDS, MAX_CHANNEL, MAX_ZONE, SCHEMA,
                                    ZONE_FIELDS, ZONE_SCHEMA, ZONE_SECTION,
                                    zoneSection)
from numberok.settings.store import Observer, SettingsStore
from numberok.settings.values import (DEFAULT_ZONE, Key, Settings,
                                      ZoneSettings)

__all__ = [
    "DEFAULT_FILE", "DEFAULT_ZONE", "FIELDS", "Field", "Key", "MAX_CHANNEL",
    "MAX_ZONE", "Observer", "PASSWORD_HASH", "SCHEMA", "SETTINGS_FILE_MODE",
    "Settings", "SettingsError", "SettingsFileError", "SettingsFileInvalid",
    "SettingsStore", "ZONE_FIELDS", "ZONE_SCHEMA", "ZONE_SECTION",
    "ZoneSettings", "createDefaultFile", "defaultText", "load",
    "parseNetworks", "parsePasswordHash", "parseText", "saveFile",
    "updateText", "writeAtomically", "zoneSection",
]
