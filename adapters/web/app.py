"""``syncledger serve``: the admin dashboard and its JSON API, one FastAPI app.

FastAPI (on Starlette, served by uvicorn) because the JSON API is documented
from the same route functions that answer it (``/openapi.json``, rendered
without any CDN at ``/api``), and query parameters are validated against
the same choices the CLI offers. Pages are server-rendered with Jinja2
(autoescaped: meeting subjects come from outside the org) plus one small
script; nothing is built, nothing is fetched from the network.

Every answer comes from the read models the CLI uses (``projections.queries``,
``explain``, ``timeline``, ``state``, ``whatif``): a page and its API route
call the same function, and the API's JSON is what ``--json`` prints, except
that a private meeting's content is withheld (``projections.privacy``).
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from adapters.service.metrics import latest as metrics_page
from adapters.web import access, health
from ledger.settings import SettingsError
from ledger.store import Store
from projections import queries
from projections.explain import NotFound, explain, resolve
from projections.privacy import hide_evidence_detail, is_private_meeting, without_content
from projections.state import NotKnownYet, meeting_state
from projections.timeline import status_of, timeline, title_of
from projections.whatif import whatif

HERE = Path(__file__).resolve().parent
PER_PAGE = 25
ISSUE_KINDS = ("private-item", "recurring-all-day", "recurrence-conversion",
               "unsupported-time-zone", "lightning-recurrence")
WHATIF_EXAMPLES = ("sync_private_items=true", "salesforce_time_zones+=Asia/Kolkata",
                   "org_domains+=example.org", "product_users.EMAIL=SALESFORCE_USER_ID")

State = Literal["open", "resolved"]


@dataclass
class WebConfig:
    """What the app needs: the ledger, the token (None: loopback only), Graph's hooks."""

    db: str
    token: str | None = None
    #: Graph change notifications, when the service receives them (``adapters.web.notify``).
    notifications: Any = None
    #: Configured mailboxes: listed in the overview before their first job.
    mailboxes: tuple[str, ...] = ()
    started: float = field(default_factory=time.monotonic)


class WhatIfRequest(BaseModel):
    """Settings laid on the whole history, as ``syncledger whatif --set`` takes them."""

    set: list[str] = Field(min_length=1, max_length=20,
                           examples=[["sync_private_items=true"]])


def page_of(rows: list[dict[str, Any]], page: int, per_page: int) -> dict[str, Any]:
    pages = max(1, math.ceil(len(rows) / per_page))
    page = min(max(page, 1), pages)
    return {"rows": rows[(page - 1) * per_page: page * per_page], "page": page,
            "pages": pages, "total": len(rows)}


def create_app(config: WebConfig) -> FastAPI:
    store = Store.open(config.db)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if config.notifications is not None:
            config.notifications.start()
        try:
            yield
        finally:
            if config.notifications is not None:
                config.notifications.stop()
            store.close()

    app = FastAPI(lifespan=lifespan, title="syncledger dashboard", version="1",
                  description="The read models of an Exchange <-> Salesforce sync ledger. "
                              "Every route answers what the CLI's --json prints.",
                  docs_url=None, redoc_url=None)
    app.state.store = store
    app.state.config = config
    app.middleware("http")(access.guard(config.token))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"page_name": name, **context},
                                          status_code=status)

    def qs(request: Request, **changes: Any) -> str:
        params = {**request.query_params, **{k: str(v) for k, v in changes.items()}}
        return "?" + urlencode({k: v for k, v in params.items() if v not in ("", None)})

    templates.env.globals["qs"] = qs

    def overview_data() -> dict[str, Any]:
        data = queries.overview(store)
        status = {r["mailbox"]: r for r in health.mailbox_status(store, config.mailboxes)}
        for row in data["mailboxes"]:
            row.update({k: v for k, v in status.pop(row["mailbox"], {}).items()
                        if k != "mailbox"})
        for mailbox, extra in sorted(status.items()):
            data["mailboxes"].append({"mailbox": mailbox, "linked_items": 0, "open_issues": 0,
                                      "open_conflicts": 0, "pending_writes": 0, **extra})
        data["mailboxes"].sort(key=lambda r: r["mailbox"])
        data["totals"]["parked_writes"] = health.parked_writes(store)
        data["last_cycle"] = health.last_cycle(store)
        return data

    def meeting_data(any_id: str) -> dict[str, Any]:
        r = resolve(store, any_id)
        m = store.meeting(r.meeting_id)
        entries = timeline(store, r.meeting_id)
        private = is_private_meeting(m, entries)
        out = explain(store, any_id)
        title, start = title_of(m)
        if private:
            entries, out = without_content(entries), hide_evidence_detail(out)
            title = "(private item)"
        return {"id": any_id, "meeting_id": str(r.meeting_id), "resolved_as": r.kind,
                "title": title, "start": start, "status": status_of(m), "private": private,
                "explain": out, "timeline": entries}

    def run_whatif(assignments: list[str]) -> dict[str, Any]:
        return whatif(store, assignments)

    # --- errors ---------------------------------------------------------------

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        if request.url.path.startswith("/api"):
            return JSONResponse({"error": str(exc)}, status_code=404)
        return render(request, "error.html", 404, title="Not found", message=str(exc))

    # --- pages ----------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview_page(request: Request) -> HTMLResponse:
        return render(request, "overview.html", data=overview_data())

    @app.get("/issues", response_class=HTMLResponse, include_in_schema=False)
    def issues_page(request: Request, kind: str = "", mailbox: str = "", state: str = "",
                    page: int = 1) -> HTMLResponse:
        return _list_page(request, "issues", kind, mailbox, state, page)

    @app.get("/conflicts", response_class=HTMLResponse, include_in_schema=False)
    def conflicts_page(request: Request, kind: str = "", mailbox: str = "", state: str = "",
                       page: int = 1) -> HTMLResponse:
        return _list_page(request, "conflicts", kind, mailbox, state, page)

    def _list_page(request: Request, name: str, kind: str, mailbox: str, state: str,
                   page: int) -> HTMLResponse:
        if state not in ("", "open", "resolved"):
            state = ""
        rows = queries.read_model(store, name, kind=kind or None, mailbox=mailbox or None,
                                  state=state or None)
        every = queries.read_model(store, name)
        kinds = sorted({r["kind"] for r in every} | (set(ISSUE_KINDS) if name == "issues"
                                                      else set()))
        mailboxes = sorted({str(r.get("mailbox") or r.get("attendee")) for r in every
                            if r.get("mailbox") or r.get("attendee")})
        return render(request, f"{name}.html", listing=page_of(rows, page, PER_PAGE),
                      filters={"kind": kind, "mailbox": mailbox, "state": state},
                      kinds=kinds, mailboxes=mailboxes)

    @app.get("/meeting", response_class=HTMLResponse, include_in_schema=False)
    def meeting_page(request: Request, id: str = "") -> HTMLResponse:
        if not id.strip():
            return render(request, "error.html", 400, title="Which meeting?",
                          message="give an id: ledger meeting id, Exchange item id, iCalUId "
                                  "or Salesforce Event id (15 or 18 characters)")
        return render(request, "meeting.html", m=meeting_data(id.strip()))

    @app.get("/whatif", response_class=HTMLResponse, include_in_schema=False)
    def whatif_form(request: Request) -> HTMLResponse:
        return render(request, "whatif.html", examples=WHATIF_EXAMPLES, settings="",
                      result=None, error=None)

    @app.post("/whatif", response_class=HTMLResponse, include_in_schema=False)
    def whatif_page(request: Request, settings: Annotated[str, Form()] = "") -> HTMLResponse:
        assignments = [line.strip() for line in settings.splitlines() if line.strip()]
        result, error = None, None
        if not assignments:
            error = "give at least one setting, one per line"
        else:
            try:
                result = run_whatif(assignments)
            except SettingsError as exc:
                error = str(exc)
        return render(request, "whatif.html", 400 if error else 200, examples=WHATIF_EXAMPLES,
                      settings=settings, result=result, error=error)

    @app.get("/api", response_class=HTMLResponse, include_in_schema=False)
    def api_page(request: Request) -> HTMLResponse:
        routes = [{"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                   "description": op.get("description", ""),
                   "parameters": [p["name"] for p in op.get("parameters", [])]}
                  for path, ops in app.openapi()["paths"].items()
                  for method, op in ops.items()]
        return render(request, "api.html", routes=routes)

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return render(request, "login.html", next=_local(next), error=None)

    @app.post("/login", include_in_schema=False)
    def login(request: Request, token: Annotated[str, Form()] = "",
              next: Annotated[str, Form()] = "/") -> Response:
        if config.token is None or not access.same_token(token, config.token):
            return render(request, "login.html", 401, next=_local(next),
                          error="that is not the dashboard token" if config.token else
                          "this dashboard has no token: it answers loopback clients only")
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(access.COOKIE, token, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    # --- JSON API: what the CLI's --json prints -------------------------------------

    @app.get("/api/overview", tags=["read models"])
    def api_overview() -> dict[str, Any]:
        """Totals and one row per mailbox: status, open issues, conflicts, pending and
        parked writes, the last sync cycle."""
        return overview_data()

    @app.get("/api/mapping", tags=["read models"])
    def api_mapping(response: Response, mailbox: str | None = None,
                    kind: Literal["single", "master", "occurrence", "exception"] | None = None,
                    offset: Annotated[int, Query(ge=0)] = 0,
                    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None
                    ) -> list[dict[str, Any]]:
        """``syncledger mapping --json``: Exchange item <-> Salesforce Event ids."""
        return _slice(response, queries.read_model(store, "mapping", mailbox=mailbox,
                                                   kind=kind), offset, limit)

    @app.get("/api/issues", tags=["read models"])
    def api_issues(response: Response, mailbox: str | None = None, kind: str | None = None,
                   state: State | None = None, offset: Annotated[int, Query(ge=0)] = 0,
                   limit: Annotated[int | None, Query(ge=1, le=10_000)] = None
                   ) -> list[dict[str, Any]]:
        """``syncledger issues --json``: sync issues and skips by rule id (``kind``)."""
        return _slice(response, queries.read_model(store, "issues", mailbox=mailbox, kind=kind,
                                                   state=state), offset, limit)

    @app.get("/api/conflicts", tags=["read models"])
    def api_conflicts(response: Response, mailbox: str | None = None,
                      kind: str | None = None, state: State | None = None,
                      offset: Annotated[int, Query(ge=0)] = 0,
                      limit: Annotated[int | None, Query(ge=1, le=10_000)] = None
                      ) -> list[dict[str, Any]]:
        """``syncledger conflicts --json``: attendees who saved before their organizer."""
        return _slice(response, queries.read_model(store, "conflicts", mailbox=mailbox,
                                                   kind=kind, state=state), offset, limit)

    @app.get("/api/plan", tags=["read models"])
    def api_plan(response: Response, mailbox: str | None = None,
                 kind: Literal["create", "update", "delete", "set-categories"] | None = None,
                 offset: Annotated[int, Query(ge=0)] = 0,
                 limit: Annotated[int | None, Query(ge=1, le=10_000)] = None
                 ) -> list[dict[str, Any]]:
        """``syncledger plan --json``: the writes either calendar still needs."""
        rows = queries.read_model(store, "plan", mailbox=mailbox, kind=kind)
        return _slice(response, _hide_private_rows(store, rows), offset, limit)

    @app.get("/api/analytics", tags=["read models"])
    def api_analytics(response: Response, mailbox: str | None = None,
                      kind: str | None = None,
                      state: Literal["synced", "pending", "not-synced", "conflict"] | None
                      = None, daily: bool = False, offset: Annotated[int, Query(ge=0)] = 0,
                      limit: Annotated[int | None, Query(ge=1, le=10_000)] = None
                      ) -> list[dict[str, Any]]:
        """``syncledger analytics [--daily] --json``: one row per meeting, or daily counts."""
        try:
            rows = queries.read_model(store, "analytics", mailbox=mailbox, kind=kind,
                                      state=state, daily=daily)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        return _slice(response, rows, offset, limit)

    @app.get("/api/explain", tags=["meetings"])
    def api_explain(id: str) -> dict[str, Any]:
        """``syncledger explain ID --json``: synced or not, the rule, who can act, evidence.
        ID is a ledger meeting id, Exchange item id, iCalUId or Salesforce Id (15/18)."""
        return dict(meeting_data(id)["explain"])

    @app.get("/api/history", tags=["meetings"])
    def api_history(id: str) -> list[dict[str, Any]]:
        """``syncledger history ID --json``: every observation and decision of the meeting."""
        return list(meeting_data(id)["timeline"])

    @app.get("/api/state", tags=["meetings"])
    def api_state(id: str, version: Annotated[int | None, Query(ge=1)] = None,
                  at: datetime | None = None) -> dict[str, Any]:
        """``syncledger state ID [--version N | --at TIME] --json``."""
        if version is not None and at is not None:
            raise HTTPException(400, "give version or at, not both")
        r = resolve(store, id)
        try:
            view = meeting_state(store, r.meeting_id, version=version, at=at)
        except NotKnownYet as exc:
            raise HTTPException(404, str(exc)) from exc
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from exc
        m = store.meeting(r.meeting_id)
        return dict(without_content(view)) if is_private_meeting(
            m, timeline(store, r.meeting_id)) else view

    @app.post("/api/whatif", tags=["meetings"])
    def api_whatif(body: WhatIfRequest) -> dict[str, Any]:
        """``syncledger whatif --set KEY=VALUE ... --json``: what would change under other
        settings (the ledger is not touched)."""
        try:
            return run_whatif(body.set)
        except SettingsError as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.get("/api/quarantine", tags=["read models"])
    def api_quarantine() -> list[dict[str, Any]]:
        """``syncledger quarantine --json``: input that could not be recorded."""
        return [{k: v for k, v in row.items() if k != "raw"} for row in store.quarantined()]

    # --- health ------------------------------------------------------------------

    @app.get("/healthz", tags=["service"])
    def healthz() -> JSONResponse:
        """Store reachable, age of the last sync cycle; 503 when the store is not."""
        body = health.check(store, started=config.started)
        return JSONResponse(body, status_code=200 if body["store"] == "ok" else 503)

    @app.get("/metrics", tags=["service"], response_class=Response)
    def metrics() -> Response:
        """Prometheus text format: the read models' gauges and this process's counters
        (``adapters.service.metrics``)."""
        data, content_type = metrics_page(store)
        return Response(data, media_type=content_type)

    if config.notifications is not None:
        app.include_router(config.notifications.router())

    return app


def _hide_private_rows(store: Store, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Plan rows of private meetings without the content they would write."""
    private: dict[str, bool] = {}
    out = []
    for row in rows:
        mid = row["meeting_id"]
        if mid not in private:
            private[mid] = is_private_meeting(store.meeting(resolve(store, mid).meeting_id))
        out.append(without_content(row) if private[mid] else row)
    return out


def _slice(response: Response, rows: list[dict[str, Any]], offset: int, limit: int | None
           ) -> list[dict[str, Any]]:
    response.headers["X-Total-Count"] = str(len(rows))
    return rows[offset: offset + limit if limit is not None else None]


def _local(target: str) -> str:
    """Only a path on this site: a login never redirects elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") else "/"
