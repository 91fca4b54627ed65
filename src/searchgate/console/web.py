"""The console's route table and request pipeline.

Every page is declared in its module's ``routes`` (a :class:`PageRoutes`), naming the
one permission it needs (or ``PUBLIC`` / ``SIGNED_IN``); ``console/app.py`` lists the
modules it serves. The pipeline is the same for all of them: load the
session, check Origin and the CSRF token on state-changing methods, check the
permission, then run the view in a worker thread. Nothing reaches a view that has not
passed those checks, and a route that declares nothing does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from searchgate.console import auth
from searchgate.console.auth import Principal
from searchgate.console.templating import render_page
from searchgate.error_status import status_of
from searchgate.errors import (
    Forbidden,
    ReauthenticationRequired,
    SearchgateError,
)
from searchgate.permissions import Permission
from searchgate.runtime import Runtime

PUBLIC: Final = "public"
SIGNED_IN: Final = "signed-in"
Need = Permission | str
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PASSWORD_PAGE = "/account/password"  # noqa: S105 - a page, not a password
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    need: Need
    name: str
    # Open to a person who must enrol in MFA before anything else is granted.
    during_enrolment: bool = False
    # Open to a person who must first replace a password someone else set.
    during_password_change: bool = False


Handler = Callable[["Ctx"], Response]


@dataclass(frozen=True)
class Page:
    spec: RouteSpec
    view: Handler


class PageRoutes:
    """One route module's pages: ``routes = PageRoutes()`` at the top of the module, and
    ``@routes.page(...)`` on each view."""

    def __init__(self) -> None:
        self.pages: list[Page] = []

    def page(
        self,
        method: str,
        path: str,
        need: Need,
        *,
        name: str,
        during_enrolment: bool = False,
        during_password_change: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declares a console route and the permission it needs."""

        def register(fn: Handler) -> Handler:
            spec = RouteSpec(method, path, need, name, during_enrolment, during_password_change)
            self.pages.append(Page(spec, fn))
            return fn

        return register


def all_pages(tables: Iterable[PageRoutes]) -> list[Page]:
    """The pages of ``tables``, in order; a route declared twice is a mistake."""
    pages: list[Page] = []
    seen: set[tuple[str, str]] = set()
    for table in tables:
        for p in table.pages:
            where = (p.spec.method, p.spec.path)
            if where in seen:
                raise RuntimeError(f"console route {where[0]} {where[1]} declared twice")
            seen.add(where)
            pages.append(p)
    return pages


class Refused(Exception):
    """Ends a request with an error page (403 for CSRF and permissions, 404, ...)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass
class Ctx:
    request: Request
    rt: Runtime
    session: auth.SessionState
    form: FormData | None
    spec: RouteSpec
    principal: Principal | None = None
    reauth_error: str | None = None
    # Seconds to wait when the re-authentication was refused by the throttle.
    reauth_retry_after: int | None = None
    cookies_out: list[tuple[str, str, int | None]] = field(default_factory=list)

    # --- input ---------------------------------------------------------------------

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default)

    def field(self, name: str, default: str = "") -> str:
        if self.form is None:
            return default
        value = self.form.get(name, default)
        return value if isinstance(value, str) else default

    def fields(self, name: str) -> list[str]:
        if self.form is None:
            return []
        return [v for v in self.form.getlist(name) if isinstance(v, str)]

    @property
    def htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    @property
    def me(self) -> Principal:
        """The signed-in person; the pipeline runs only PUBLIC views without one."""
        if self.principal is None:
            raise Refused(401, "Sign in", "Sign in to continue.")
        return self.principal

    def client(self) -> auth.ClientInfo:
        return auth.client_info(self.request)

    # --- output --------------------------------------------------------------------

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        return render_page(self, template, status, values)

    def error_page(self, status: int, title: str, message: str) -> HTMLResponse:
        return render_page(
            self, "error.html", status, {"title": title, "message": message, "code": status}
        )

    def redirect(self, url: str, flash: str | None = None) -> Response:
        if flash:
            self.set_cookie(auth.FLASH_COOKIE, flash, 60)
        if self.htmx:
            return Response(status_code=204, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)

    def set_cookie(self, base: str, value: str, max_age: int | None) -> None:
        self.cookies_out.append((base, value, max_age))

    def can(self, need: Need) -> bool:
        return allowed(self.principal, need)


def allowed(principal: Principal | None, need: Need) -> bool:
    if need == PUBLIC:
        return True
    if principal is None:
        return False
    if need == SIGNED_IN:
        return True
    return need in principal.permissions


# --- the pipeline ---------------------------------------------------------------------


def same_origin(request: Request) -> bool:
    """The request comes from a page of this console (Origin, else Referer, must match).

    Only the host (and port) are compared: behind a TLS-terminating proxy the scheme the
    server sees may differ from the browser's, while a foreign site's host never matches.
    """
    own = request.headers.get("host", "")
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null" or not own:
        return False
    return urlsplit(source).netloc.lower() == own.lower()


# --- where to go next -----------------------------------------------------------------

NEXT_MAX = 2048
# A path the console itself writes is printable ASCII (quote() escapes the rest); a
# backslash is a slash to browsers.
_NEXT_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"\\"}
_TRIMMED = "".join(chr(c) for c in range(0x21))


def _stays_here(path: str) -> bool:
    """Read as a browser reads a Location (outer spaces and control characters dropped,
    tabs and newlines dropped anywhere, backslashes as slashes), a path on this host."""
    seen = path.strip(_TRIMMED).replace("\t", "").replace("\n", "").replace("\r", "")
    seen = seen.replace("\\", "/")
    return seen.startswith("/") and not seen.startswith("//")


def safe_next(value: str) -> str:
    """The ``next`` of any console page (after signing in, the TOTP step, confirming it
    is you): a path on this site, else "/". Never an open redirect.

    Percent-decoded forms are checked too, to the last layer: a later step that decodes
    once more (or a proxy) must not turn ``/%2F/evil.example`` into ``//evil.example``."""
    if len(value) > NEXT_MAX or not set(value) <= _NEXT_CHARS or not _stays_here(value):
        return "/"
    form = value
    while "%" in form:
        decoded = unquote(form)
        if decoded == form:
            break
        if not _stays_here(decoded):
            return "/"
        form = decoded
    return value


def check_csrf(request: Request, form: FormData | None, expected: str | None) -> None:
    if not same_origin(request):
        raise Refused(
            403,
            "Request refused",
            "This request did not come from a page of this console (its Origin does not "
            "match). Go back, reload the page and try again.",
        )
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and form is not None:
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not auth.tokens_match(sent, expected):
        raise Refused(
            403,
            "Request refused",
            "The form's security token is missing or out of date. Reload the page and try again.",
        )


def _sign_in_redirect(request: Request, reason: str | None) -> Response:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    if request.method not in SAFE_METHODS:
        target = urlsplit(request.headers.get("referer", "")).path or "/"
    url = "/sign-in?next=" + quote(safe_next(target), safe="/")
    if reason:
        url += "&reason=" + reason
    if request.headers.get("hx-request") == "true":
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def make_endpoint(page: Page) -> Callable[[Request], Any]:
    spec, view = page.spec, page.view

    async def endpoint(request: Request) -> Response:
        rt: Runtime = request.app.state.runtime
        form = await request.form() if spec.method not in SAFE_METHODS else None
        return await run_in_threadpool(_run, request, rt, form, spec, view)

    endpoint.__name__ = spec.name
    return endpoint


def _run(
    request: Request, rt: Runtime, form: FormData | None, spec: RouteSpec, view: Handler
) -> Response:
    session = auth.load_session(rt, request)
    ctx = Ctx(request, rt, session, form, spec, session.principal)
    if session.clear_cookie:
        ctx.set_cookie(auth.SESSION_COOKIE, "", 0)
    try:
        response = _checked(ctx, view)
    except Refused as exc:
        response = ctx.error_page(exc.status, exc.title, exc.message)
    except ReauthenticationRequired:
        # A button without a password field of its own: confirm, then come back.
        back = urlsplit(request.headers.get("referer", "")).path or "/"
        response = ctx.redirect(
            "/reauth?next=" + quote(safe_next(back), safe="/"),
            "Confirm it is you, then repeat what you were doing.",
        )
    except Forbidden as exc:
        response = ctx.error_page(403, "Not allowed", exc.message)
    except SearchgateError as exc:
        status = status_of(exc)
        title = "Not found" if status == 404 else "That did not work"
        response = ctx.error_page(status, title, exc.message)
    auth.finish(ctx, response)
    return response


def _checked(ctx: Ctx, view: Handler) -> Response:
    spec, request, principal = ctx.spec, ctx.request, ctx.principal
    if spec.need != PUBLIC and principal is None:
        return _sign_in_redirect(request, ctx.session.ended_reason)
    if spec.method not in SAFE_METHODS:
        check_csrf(request, ctx.form, auth.csrf_for_check(ctx.rt, request, ctx.session))
    # First steps, in order: a password of one's own, then MFA where it is required.
    changing = principal is not None and principal.actor.password_change_required
    if changing and spec.need != PUBLIC and not spec.during_password_change:
        return ctx.redirect(PASSWORD_PAGE)
    enrolling = principal is not None and principal.actor.mfa_enrolment_required
    if enrolling and spec.need != PUBLIC and not spec.during_enrolment:
        return ctx.redirect("/account/mfa")
    if not allowed(principal, spec.need):
        auth.record_denied(ctx.rt, principal, str(spec.need), request.url.path)
        raise Refused(
            403,
            "Not allowed",
            f"Your role does not include the permission this page needs ({spec.need}). "
            "Ask an admin if you need it.",
        )
    reauth = ctx.field("reauth")
    if reauth:
        auth.reauthenticate(ctx, reauth)
    return view(ctx)
