"""
The admin web server's resource tree: Twisted's own routing model, a tree
of resources put together with C{putChild}, whose leaves are
L{numberok.web.common.Endpoint}s (one handler style: an C{async} method
per HTTP verb, errors raised as C{HTTPError}, answers through
C{answerJSON}) that pass every request through one gate (authentication,
CSRF; L{numberok.web.gate}) before answering it -- except device pushes,
which check their callers' token or credentials themselves.

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
    POST   <push paths>               device pushes, mounted by the parts
                                      that serve them (L{AdminResource.
                                      putPush}; camera alarms:
                                      L{numberok.web.cameras})
    GET    /api/visits[/inside]       visits and occupancy
                                      (L{numberok.journal.visits_api})
    GET    /api/webhooks              webhook targets' status
    POST   /api/webhooks/<n>/rewind   send again from a journal id
                                      (L{numberok.webhooks.resource})

Other parts mount their own endpoints with L{AdminResource.putAPI}.
"""

from __future__ import annotations

from typing import Optional

from twisted.web import resource

from numberok.metrics import Metrics, metricsOrPrivate
from numberok.journal.visits_api import VisitsResource
from numberok.web.common import Node, Push
from numberok.web.connections_api import ConnectionsEndpoint
from numberok.web.gate import Gate
from numberok.web.login import LoginEndpoint, LogoutEndpoint
from numberok.web.metrics import MetricsEndpoint
from numberok.web.page import LiveEndpoint, PageEndpoint
from numberok.web.reads_api import ReadsEndpoint
from numberok.web.recent import eventsResource
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
        self.metrics = metricsOrPrivate(metrics)
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
        self.putAPI(b"events", eventsResource(admin.journal, admin.recent,
                                              gate))
        self.putAPI(b"reads", ReadsEndpoint(gate, admin, self.metrics))
        self.putAPI(b"visits", VisitsResource(admin.visits, gate))

    def putPush(self, push: Push) -> None:
        """
        Mount C{push.resource} at C{push.path}, outside the gate (see
        L{Push}); inner nodes the path needs are made as gated L{Node}s.
        """
        *inner, leaf = push.path.strip(b"/").split(b"/")
        node: resource.Resource = self
        for name in inner:
            child = node.children.get(name)
            if child is None:
                child = Node(self.gate)
                node.putChild(name, child)
            node = child
        node.putChild(leaf, push.resource)

    def putAPI(self, name: bytes, child: resource.Resource) -> None:
        """
        Mount C{child} at C{/api/<name>}.  An L{numberok.web.common.
        Endpoint} checks logins itself; wrap any other resource in
        L{numberok.web.common.Guarded} to put it behind the gate.
        """
        self.api.putChild(name, child)
