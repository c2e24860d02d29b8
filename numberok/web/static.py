"""
C{/static/<name>.css|js|ttf}: the page's CSS, script and the plate font
(DejaVu Sans Mono Bold, so plates read the same on every viewer's
machine).  Public (the login form needs the CSS), read once from the
package, names checked (no paths).  No CDN anywhere: the server may sit on a network without
internet.
"""

from __future__ import annotations

import re

from twisted.python.filepath import FilePath
from twisted.web import resource

from numberok.web.common import Endpoint, Node, NotFound, answer

STATIC = FilePath(__file__).sibling("static")
STATIC_NAME = re.compile(rb"^[A-Za-z0-9_-]+\.(css|js|ttf)$")
STATIC_TYPES = {b"css": b"text/css; charset=utf-8",
                b"js": b"text/javascript; charset=utf-8",
                b"ttf": b"font/ttf"}


class StaticNode(Node):
    """
    C{/static/<name>.css|js|ttf}: the page's CSS, script and plate font,
    public, read once from the package; names are checked (no paths).
    """

    def __init__(self, gate) -> None:
        super().__init__(gate)
        self._files: dict[bytes, bytes] = {}

    def getChild(self, path: bytes, request) -> resource.Resource:
        match = STATIC_NAME.match(path)
        if match is None or not STATIC.child(path.decode("ascii")).isfile():
            return NotFound(self.gate)
        if path not in self._files:
            self._files[path] = STATIC.child(path.decode("ascii")
                                             ).getContent()
        return StaticFile(self.gate, self._files[path],
                          STATIC_TYPES[match.group(1)])


class StaticFile(Endpoint):
    public = True
    queryParameters = None  # a cache-busting query is harmless here

    def __init__(self, gate, body: bytes, contentType: bytes) -> None:
        super().__init__(gate)
        self.body = body
        self.contentType = contentType

    async def GET(self, request, identity) -> None:
        request.setHeader(b"Cache-Control", b"no-cache")
        answer(request, 200, self.contentType, self.body)

