"""
The admin web server's resource tree: Twisted's own routing model, a tree
of resources put together with C{putChild}, whose leaves are
L{numberok.web.common.Endpoint}s that pass every request through one gate
(authentication, CSRF; L{numberok.web.gate}) before answering it.

    GET    /                          the admin page (login needed)
    GET    /live                      its live parts, for its script
    GET    /login, POST /login        the login form
    POST   /logout
    GET    /static/<name>.css|js      the page's CSS and script (public)
    GET    /metrics                   Prometheus exposition (like the API)
    GET    /api/settings              settings, schema, listening state
    PUT    /api/settings              partial change; 200 or 400 {"errors"}
    GET    /api/connections           connections table and counters
    DELETE /api/connections/<id>      204, 404 for an unknown id
    /api/events/...                   the journal and the last events
                                      (L{numberok.web.recent.eventsResource})
    POST   /api/reads                 HTTP ingest; 202 or 400 {"errors"}
    POST   /api/cameras/hikvision     camera alarms (L{numberok.web.cameras})
    GET    /api/webhooks              webhook targets' status
    POST   /api/webhooks/<n>/rewind   send again from a journal id
                                      (L{numberok.webhooks.resource})

Other parts mount their own endpoints with L{AdminResource.putAPI}.
"""

from __future__ import annotations

from typing import Optional

from twisted.web import resource

from numberok.metrics import Metrics
from numberok.web.common import Guarded, Node
from numberok.web.connections_api import ConnectionsEndpoint
from numberok.web.gate import Gate
from numberok.web.login import LoginEndpoint, LogoutEndpoint
from numberok.web.metrics import MetricsEndpoint
from numberok.web.page import LiveEndpoint, PageEndpoint
from numberok.web.reads_api import ReadsEndpoint
from numberok.web.settings_api import SettingsEndpoint
from numberok.web.static import StaticNode


class AdminResource(Node):
    """
    The root of the admin site.

    @param admin: the L{numberok.web.service.AdminService} holding the parts
        (store, factory, sink, recent, the C{/api/events} resource,
        sessions, password checker, reactor and thread pool).
    @param metrics: the server's one registry: C{/metrics} serves it, the
        page and C{/api/connections} read their counters from it, and
        C{POST /api/reads} counts its refusals in it.
    """

    def __init__(self, admin, metrics: Optional[Metrics] = None) -> None:
        self.metrics = metrics if metrics is not None else Metrics()
        gate = Gate(admin.store, admin.sessions, admin.passwords)
        super().__init__(gate)
        self.gate = gate
        self.putChild(b"", PageEndpoint(gate, admin, self.metrics))
        self.putChild(b"live", LiveEndpoint(gate, admin, self.metrics))
        self.putChild(b"login", LoginEndpoint(gate))
        self.putChild(b"logout", LogoutEndpoint(gate))
        self.putChild(b"static", StaticNode(gate))
        self.putChild(b"metrics", MetricsEndpoint(gate, self.metrics))
        self.api = Node(gate)
        self.putChild(b"api", self.api)
        self.putAPI(b"settings", SettingsEndpoint(gate, admin))
        self.putAPI(b"connections",
                    ConnectionsEndpoint(gate, admin, self.metrics))
        self.putAPI(b"events", Guarded(gate, admin.eventsResource))
        self.putAPI(b"reads", ReadsEndpoint(gate, admin, self.metrics))
        self.cameras = Node(gate)
        self.putAPI(b"cameras", self.cameras)

    def putCameraPush(self, kind: bytes, push: resource.Resource) -> None:
        """
        Mount a camera push at C{/api/cameras/<kind>}.  It is not behind
        the gate: a camera has no session, Origin or loopback Host, and
        checks its token or Basic credentials itself.
        """
        self.cameras.putChild(kind, push)

    def putAPI(self, name: bytes, child: resource.Resource) -> None:
        """
        Mount C{child} at C{/api/<name>}.  An L{numberok.web.common.
        Endpoint} checks logins itself; wrap any other resource in
        L{numberok.web.common.Guarded} to put it behind the gate.
        """
        self.api.putChild(name, child)
