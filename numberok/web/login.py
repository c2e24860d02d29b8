"""
The login form (C{GET}/C{POST /login}), C{POST /logout} and the small
error page of the admin server.  Who may log in, and how, is
L{numberok.web.auth}'s model, applied by L{numberok.web.gate}.
"""

from __future__ import annotations

from twisted.web.template import Element, Tag, XMLFile, renderer

from numberok.web import auth
from numberok.web.common import Endpoint, answerHTML, peer, redirect
from numberok.web.page import TEMPLATES, render


class LoginElement(Element):
    loader = XMLFile(TEMPLATES.child("login.xml"))

    def __init__(self, message: str) -> None:
        super().__init__()
        self.text = message

    @renderer
    def message(self, request, tag: Tag):
        return tag(self.text) if self.text else ""


class ErrorElement(Element):
    loader = XMLFile(TEMPLATES.child("error.xml"))

    def __init__(self, code: int, message: str) -> None:
        super().__init__()
        self.code = code
        self.text = message

    @renderer
    def title(self, request, tag: Tag) -> Tag:
        return tag("Error %d" % (self.code,))

    @renderer
    def message(self, request, tag: Tag) -> Tag:
        return tag(self.text)


def errorPage(code: int, message: str) -> bytes:
    """A small error page (synchronous: the template has no Deferreds)."""
    out: list = []
    render(ErrorElement(code, message)).addBoth(out.append)
    return out[0] if isinstance(out[0], bytes) else b"error"


class LoginEndpoint(Endpoint):
    """C{GET /login} shows the form, C{POST /login} checks the password."""

    public = True
    api = False

    async def GET(self, request, identity, message: str = "",
                  code: int = 200) -> None:
        if self.gate.openMode:
            return redirect(request, b"/")
        answerHTML(request, code, await render(LoginElement(message)))

    async def POST(self, request, identity) -> None:
        if self.gate.openMode:
            return redirect(request, b"/")
        password = (request.args.get(b"password") or [b""])[0].decode(
            "utf-8", "replace")
        try:
            ok = await self.gate.passwords.check(password, peer(request))
        except auth.Throttled as e:
            request.setHeader(b"Retry-After", b"%d" % (e.retryAfter,))
            return await self.GET(request, identity, e.message, 429)
        if ok:
            self.log.info("admin login from {peer}", peer=peer(request))
            self.gate.startSession(request)
            return redirect(request, b"/")
        await self.GET(request, identity, "Wrong password.", 401)


class LogoutEndpoint(Endpoint):
    api = False

    async def POST(self, request, identity) -> None:
        self.gate.endSession(request)
        redirect(request, b"/login" if not self.gate.openMode else b"/")

