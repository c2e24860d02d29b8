"""
C{/api/settings}: the settings as JSON with their schema and the listening
state (C{GET}), and partial changes (C{PUT}), validated all at once by the
settings model and applied by L{numberok.web.service.AdminService.
saveSettings}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from numberok import settings as settingsModule
from numberok.settings import (SCHEMA, ZONE_SCHEMA, SettingsError,
                               SettingsFileError, SettingsFileInvalid)
from numberok.settings.keys import ADMIN_PASSWORD_HASH, FAMILIES
from numberok.web.common import (Endpoint, HTTPError, answerJSON, jsonObject,
                                 peer, readBody, requireJSON)

MAX_SETTINGS_BODY = 64 * 1024
HIDDEN_SETTINGS = (ADMIN_PASSWORD_HASH.name,)
SECRET_MASK = "********"
"""What GET shows for a secret that is set; sent back unchanged by PUT it
leaves the secret as it is (a form that round-trips GET must not replace
the real secret by the mask)."""


def _withoutMasks(changes: dict[str, Any]) -> dict[str, Any]:
    secret = {f.name for family in FAMILIES.values()
              for f in family.fields if f.secret}
    kept = {}
    for name, value in changes.items():
        section, _, key = name.rpartition(".")
        familyKey = "%s.%s" % (section.partition(":")[0], key)
        if value == SECRET_MASK and familyKey in secret:
            continue
        kept[name] = value
    return kept


def _jsonValue(f, value) -> Any:
    return f.render(value) if f.kind in ("cidrs", "str") else value


def settingsAsJSON(settings: settingsModule.Settings) -> dict[str, Any]:
    """The settings as JSON scalars, as C{PUT} takes them back."""
    return {f.name: _jsonValue(f, settings[f.name]) for f in SCHEMA
            if f.name not in HIDDEN_SETTINGS}


def schemaAsJSON() -> dict[str, Any]:
    def describe(f) -> dict[str, Any]:
        return {"kind": f.kind, "default": _jsonValue(f, f.default),
                "allowed": f.describe(), "help": f.help,
                "min": f.minimum, "max": f.maximum,
                "choices": list(f.choices)}
    out = {f.name: describe(f) for f in SCHEMA
           if f.name not in HIDDEN_SETTINGS}
    out.update({"Zone.%s" % (f.key,): describe(f) for f in ZONE_SCHEMA})
    for family in FAMILIES.values():
        out.update({f.name: describe(f) for f in family.fields})
    return out


def sectionsAsJSON(settings: settingsModule.Settings
                   ) -> dict[str, list[dict[str, Any]]]:
    """
    The family sections by family: C{{"Webhook": [{"name": "erp", "Url":
    ...}]}}, each with its identifier under C{"name"}.  A secret key
    (password, token, HMAC key) shows only whether it is set: C{null} when
    empty, C{"********"} when set; C{PUT} changes it only when sent.
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for family in FAMILIES.values():
        rows = []
        for section in settings.family(family):
            row: dict[str, Any] = {"name": section.ident}
            for f in family.fields:
                value = section[f]
                if f.secret:
                    row[f.key] = SECRET_MASK if value else None
                elif isinstance(value, tuple):
                    row[f.key] = list(value)
                else:
                    row[f.key] = value
            rows.append(row)
        out[family.name] = rows
    return out


def zonesAsJSON(settings: settingsModule.Settings) -> list[dict[str, Any]]:
    return [{"channel": c, "zone": z, "LossIntervalSec": zone.lossInterval,
             "InDirection": zone.inDirection}
            for (c, z), zone in sorted(settings.zones.items())]


class SettingsEndpoint(Endpoint):
    """
    @param admin: the L{numberok.web.service.AdminService} (its store,
        listening state and C{saveSettings}).
    """

    def __init__(self, gate, admin) -> None:
        super().__init__(gate)
        self.admin = admin
        self._saving = defer.DeferredLock()

    def document(self) -> dict[str, Any]:
        current = self.admin.store.current
        return {
            "settings": settingsAsJSON(current),
            "zones": zonesAsJSON(current),
            "sections": sectionsAsJSON(current),
            "schema": schemaAsJSON(),
            "listening": self.admin.listeningState(),
            "passwordSet": bool(current[ADMIN_PASSWORD_HASH]),
        }

    async def GET(self, request, identity) -> None:
        answerJSON(request, 200, self.document())

    async def PUT(self, request, identity) -> None:
        requireJSON(request)
        changes = jsonObject(readBody(request, MAX_SETTINGS_BODY), "body",
                             '"Section.Key": value')
        for name in HIDDEN_SETTINGS:
            if name in changes:
                raise HTTPError(400, {name: (
                    "set the password with numberok-passwd, not over the API")})
        changes = _withoutMasks(changes)
        await self._saving.acquire()
        try:
            await self.admin.saveSettings(changes)
        except SettingsFileInvalid as e:
            # The file was broken by hand; the request itself was fine.
            raise HTTPError(409, e.errors)
        except SettingsFileError as e:
            raise HTTPError(500, e.errors)
        except SettingsError as e:
            raise HTTPError(400, e.errors)
        finally:
            self._saving.release()
        self.log.info("settings changed from {peer}: {keys}",
                      peer=peer(request), keys=", ".join(sorted(changes)))
        answerJSON(request, 200, self.document())
