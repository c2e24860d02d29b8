"""
C{numberok-passwd CONFIG}: set or clear the admin password in the settings
file.  Only a salted hash is stored (L{numberok.web.auth.hashPassword});
the file is written atomically, keeping the operator's comments, and is
made mode 0600 whatever it was, since it now holds the hash.  Before the
first start there is no file yet: it is created with the full commented
defaults, exactly as the first start would, plus the hash.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Optional, TextIO

from numberok.settings import (SETTINGS_FILE_MODE, SettingsError,
                               defaultText, load, parseText, saveFile)
from numberok.settings.keys import ADMIN_PASSWORD_HASH
from numberok.web.auth import (MIN_PASSWORD_LENGTH, PBKDF2_ITERATIONS,
                               hashPassword)


def _readPassword(stdin: TextIO, stdout: TextIO) -> str:
    if stdin.isatty():
        first = getpass.getpass("New admin password: ")
        if first != getpass.getpass("Again: "):
            raise ValueError("the passwords differ")
        return first
    line = stdin.readline()
    return line.rstrip("\r\n")


def passwdMain(argv: Optional[list[str]] = None,
               stdin: Optional[TextIO] = None,
               stdout: Optional[TextIO] = None,
               stderr: Optional[TextIO] = None) -> int:
    """
    C{numberok-passwd CONFIG}: read a new admin password from standard
    input (asked twice on a terminal, the first line otherwise, so
    C{echo "$PW" | numberok-passwd numberok.ini} works in scripts) and store
    its hash in C{[Admin] PasswordHash}, keeping the rest of the file as
    it is.  C{--clear} removes the password.  A running server uses the
    new password after a restart.

    @return: the exit status.
    """
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = argparse.ArgumentParser(
        prog="numberok-passwd",
        description="Set the numberok admin password (read from stdin).")
    parser.add_argument("config", help="the settings file (INI)")
    parser.add_argument("--clear", action="store_true",
                        help="remove the password (the admin server then "
                             "only listens on loopback)")
    parser.add_argument("--iterations", type=int, default=PBKDF2_ITERATIONS,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    existed = os.path.exists(args.config)
    try:
        current = (load(args.config) if existed
                   else parseText(defaultText()))
        if args.clear:
            encoded = ""
        else:
            password = _readPassword(stdin, stdout)
            if len(password) < MIN_PASSWORD_LENGTH:
                raise ValueError("the password must have at least %d "
                                 "characters" % (MIN_PASSWORD_LENGTH,))
            encoded = hashPassword(password, args.iterations)
        new = current.withChanges({ADMIN_PASSWORD_HASH: encoded})
        saveFile(args.config, current, new, mode=SETTINGS_FILE_MODE)
    except (ValueError, EOFError, SettingsError) as e:
        stderr.write("numberok-passwd: %s\n" % (e,))
        return 1
    done = "Password removed from" if args.clear else "Password set in"
    if existed:
        stdout.write("%s %s; a server already running with it uses the "
                     "password after a restart.\n" % (done, args.config))
    else:
        # Before the first start: there is no server to restart.
        stdout.write("%s %s (a new settings file with the defaults); start "
                     "the server with this file to use it.\n"
                     % (done, args.config))
    return 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(passwdMain())
