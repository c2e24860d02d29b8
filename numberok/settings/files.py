"""
The settings file: reading it (L{load}, L{parseText}), creating it with the
commented defaults (L{createDefaultFile}), and saving the running settings
into it (L{saveFile}) -- merged into the file as it is on disk now, through
the comment-keeping editor, atomically.

The save rule: a save never drops a value the running server holds.  A key
changed by the save is written; a key absent from the file on disk (the
file was emptied, or the key deleted) is written with the running value
when reading the file would give something else; a key present in the file
with another value was edited by hand since the file was loaded and stays
(so is a password set with C{numberok-passwd} meanwhile).  A file that is
gone or blank is written anew from the commented defaults with the running
values.
"""

from __future__ import annotations

import configparser
import os
import tempfile
from typing import Any, Optional

from numberok.settings.editor import editText
from numberok.settings.fields import (SettingsError, SettingsFileError,
                                      SettingsFileInvalid)
from numberok.settings.keys import (FAMILIES, FIELDS, SCHEMA, ZONE_SCHEMA,
                                    ZONE_SECTION, zoneSection)
from numberok.settings.values import Settings

DEFAULT_FILE = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "etc", "numberok.ini")
"""The commented default settings file shipped with the package."""

SETTINGS_FILE_MODE = 0o600
"""A settings file this package creates: it may hold the password hash."""


def defaultText() -> str:
    """The text of the commented default settings file."""
    with open(DEFAULT_FILE, encoding="utf-8", newline="") as f:
        return f.read()


def _read(text: str, path: Optional[str]) -> tuple[Settings, frozenset]:
    """
    Parse settings-file text; also return the names present in it
    (C{"Section.Key"}, C{"Zone:<c>:<z>"} and C{"Zone:<c>:<z>.Key"}).
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
        if ZONE_SECTION.match(section) or any(
                family.claims(section) for family in FAMILIES.values()):
            # Zones and family sections: the model checks the name, so a
            # misspelt [Webhook:...] is an error, not silently ignored.
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
    return settings, frozenset(changes)


def parseText(text: str, path: Optional[str] = None) -> Settings:
    """
    Parse settings-file text.

    @raise SettingsError: for a malformed file (naming the line), an unknown
        key in a known section, or any invalid value; all fields at once.
    """
    return _read(text, path)[0]


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


def _changes(base: Settings, new: Settings, onDisk: Settings,
             present: frozenset) -> dict[str, Any]:
    """
    What to write so that the file on disk (read as C{onDisk}, with the
    names C{present}) holds C{new}, as L{Settings.withChanges} input with
    every value rendered as file text; see the module docstring for the
    rule.  C{base} is what the running server held before this change.
    """
    changes: dict[str, Any] = {}
    for f in SCHEMA:
        value = new[f]
        if base[f] != value or (f.name not in present
                                and onDisk[f] != value):
            changes[f.name] = f.render(value)
    for where in base.zones:
        if where not in new.zones:
            changes[zoneSection(*where)] = None
    for where, zone in new.zones.items():
        section = zoneSection(*where)
        old = base.zones.get(where)
        whole = old is None or section not in present
        if whole:
            changes[section] = {}
        for f in ZONE_SCHEMA:
            name = "%s.%s" % (section, f.key)
            if (whole or old[f] != zone[f]
                    or (name not in present
                        and onDisk.zone(*where)[f] != zone[f])):
                changes[name] = f.render(zone[f])
    for where in base.sections:
        if where not in new.sections:
            changes[FAMILIES[where[0]].section(where[1])] = None
    for where, values in new.sections.items():
        family = FAMILIES[where[0]]
        section = family.section(where[1])
        old = base.sections.get(where)
        whole = old is None or section not in present
        if whole:
            changes[section] = {}
        onDiskSection = onDisk.sections.get(where)
        for f in family.fields:
            name = "%s.%s" % (section, f.key)
            if (whole or old[f] != values[f]
                    or (name not in present
                        and (onDiskSection is None
                             or onDiskSection[f] != values[f]))):
                changes[name] = f.render(values[f])
    return changes


def updateText(text: str, base: Settings, new: Settings,
               path: Optional[str] = None) -> str:
    """
    The settings-file text C{text} (as it is on disk now) with C{new}, the
    running settings, merged in: see the module docstring.  Changed keys
    are rewritten in place keeping their comments; absent keys are added
    to their section; new zones become sections at the end; removed zones
    lose their section.  Everything else -- comments, blank lines, unknown
    sections, the order -- stays as the user wrote it.  Blank text is
    replaced by the commented defaults first.

    @param base: the settings the server held before this change (what it
        loaded or last saved).
    @raise SettingsFileInvalid: C{text} is not valid now (edited by hand
        since it was loaded); it names the bad keys.
    @raise SettingsFileError: the edit would not read back as intended.
    """
    if not text.strip():
        text = defaultText()
        base, present = _read(text, None)
    else:
        try:
            _, present = _read(text, path)
        except SettingsError as e:
            raise SettingsFileInvalid(e.errors, path) from None
    onDisk = parseText(text)
    changes = _changes(base, new, onDisk, present)
    expected = onDisk.withChanges(changes)
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
    result = editText(text, edits, removed)
    try:
        readBack: Any = parseText(result)
    except SettingsError as e:
        readBack = e
    if readBack != expected:
        raise SettingsFileError("the change cannot be written to this file "
                                "safely; nothing was written", path)
    return result


def writeAtomically(path: str, text: str, mode: Optional[int] = None) -> None:
    """
    Replace the file at C{path} with C{text} so that a crash at any moment
    leaves either the old file or the new one: write a temporary file in
    the same directory, fsync it, rename it over the old one, fsync the
    directory.  A symbolic link is followed, so the link stays a link.

    @param mode: the new file's permission bits; L{None} keeps the old
        file's (a new file gets L{SETTINGS_FILE_MODE}).  Set with chmod,
        so the umask does not matter.
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    if mode is None:
        try:
            mode = os.stat(target).st_mode & 0o7777
        except FileNotFoundError:
            mode = SETTINGS_FILE_MODE
    temporary = _writeTemporary(directory, os.path.basename(target), text,
                                mode)
    try:
        os.replace(temporary, target)
    except BaseException:
        _unlink(temporary)
        raise
    _syncDirectory(directory)


def createDefaultFile(path: str) -> None:
    """
    Create the settings file at C{path} with the commented defaults, mode
    0600 whatever the umask (it will hold the password hash), atomically:
    the file appears complete or not at all, and an existing file is never
    replaced.

    @raise FileExistsError: C{path} exists already.
    @raise OSError: it cannot be created.
    """
    target = os.path.realpath(path)
    directory = os.path.dirname(target)
    temporary = _writeTemporary(directory, os.path.basename(target),
                                defaultText(), SETTINGS_FILE_MODE)
    try:
        os.link(temporary, target)
    finally:
        _unlink(temporary)
    _syncDirectory(directory)


def _writeTemporary(directory: str, name: str, text: str, mode: int) -> str:
    """A complete, fsynced temporary file with C{text} and C{mode} beside
    the file C{name}; the caller renames or links it into place."""
    fd, temporary = tempfile.mkstemp(dir=directory, prefix="." + name + ".",
                                     suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        _unlink(temporary)
        raise
    return temporary


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _syncDirectory(directory: str) -> None:
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


def saveFile(path: str, base: Settings, new: Settings,
             mode: Optional[int] = None) -> None:
    """
    Save the running settings C{new} into the settings file at C{path}
    (see L{updateText}; C{base} is what the server held before the
    change), atomically (L{writeAtomically}, C{mode} as there).  Blocking:
    call it in a thread from a running server.

    @raise SettingsFileInvalid: the file on disk is invalid; untouched.
    @raise SettingsFileError: it cannot be read or written; untouched.
    """
    try:
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as e:
        raise SettingsFileError("cannot be read: %s" % (e,), path) from None
    result = updateText(text, base, new, path)
    try:
        writeAtomically(path, result, mode)
    except OSError as e:
        raise SettingsFileError("cannot be written: %s" % (e,),
                                path) from None
