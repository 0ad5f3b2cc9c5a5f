"""The review console's web server (aiohttp, server-rendered jinja2 pages, a JSON API).

Pages: ``/`` the queue, ``/item?key=`` one item, ``/decisions`` the history; forms post to
``/item/decide`` and ``/decisions/undo`` with the session's CSRF token. The API (``/api/...``)
takes the session cookie (plus the ``X-CSRF-Token`` header on POST) or ``Authorization: Bearer``
with a reviewer's token. Access logs carry paths without query strings: searches and record keys
never reach the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import jinja2
import structlog
from aiohttp import web
from prometheus_client import generate_latest

from domain.decisions import SCOPE_CHOICES, ReviewedPayee
from schemas.decisions import ReviewDecision
from schemas.events import EntityType
from streams import metrics
from streams.kafka_io import OutgoingRecord, ensure_topics, kafka_producer, publish
from streams.postgres import create_pool
from streams.review import auth, store
from streams.settings import Settings

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "review_session"
ENTITY_TYPES: tuple[EntityType, ...] = ("business", "individual", "government", "unknown")
OUTCOME_OF_ACTION = {"confirm": "alias", "choose": "alias", "no_supplier": "no_match", "exclude": "exclude", "entity": "entity_type"}
FLASHES = {
    "decided": "Decision saved and sent to the workers.",
    "undone": "Decision undone; the items it resolved are open again.",
    "signed_out": "Signed out.",
}
SETTINGS_KEY = web.AppKey("settings", Settings)
POOL_KEY = web.AppKey("pool", asyncpg.Pool)
PUBLISH_KEY = web.AppKey("publish", object)
TEMPLATES_KEY = web.AppKey("templates", jinja2.Environment)
TRGM_KEY = web.AppKey("trgm_schema", object)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _age(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    seconds = max(0.0, (datetime.now(UTC) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _money(amount: Any, currency: str | None = None) -> str:
    if amount is None:
        return "–"
    return f"{float(amount):,.2f}" + (f" {currency}" if currency else "")


def template_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(age=_age, money=_money, urlencode=lambda params: urlencode(params))
    return env


# ------------------------------------------------------------------------------ sessions


def _session(request: web.Request) -> auth.Session:
    return request["session"]


async def _load_session(request: web.Request) -> auth.Session | None:
    pool = request.app[POOL_KEY]
    header = request.headers.get("Authorization", "")
    async with pool.acquire() as conn:
        if header.startswith("Bearer "):
            return await auth.session_for_token(conn, header.removeprefix("Bearer ").strip())
        cookie = request.cookies.get(SESSION_COOKIE)
        return await auth.session_for_cookie(conn, cookie) if cookie else None


OPEN_PATHS = frozenset({"/login", "/health", "/metrics"})


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        if request.path not in OPEN_PATHS and not request.path.startswith("/static/"):
            session = await _load_session(request)
            if session is None:
                if request.path.startswith("/api/"):
                    raise web.HTTPUnauthorized(text="sign in or send a reviewer token")
                raise web.HTTPFound("/login")
            request["session"] = session
            if request.method == "POST":
                presented = request.headers.get("X-CSRF-Token")
                if presented is None and request.content_type == "application/x-www-form-urlencoded":
                    presented = (await request.post()).get("csrf")  # type: ignore[assignment]
                if not auth.csrf_matches(session, presented):
                    raise web.HTTPForbidden(text="CSRF token missing or wrong; reload the page")
                if not session.reviewer.may_decide and request.path != "/logout":
                    raise web.HTTPForbidden(text="read-only reviewers cannot take decisions")
        response = await handler(request)
        status = response.status
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; form-action 'self'"
        )
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    finally:
        metrics.REVIEW_REQUEST_LATENCY.labels(route=_route_name(request)).observe(time.perf_counter() - started)
        log.info(
            "review_request",
            method=request.method,
            path=request.path,
            status=status,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def render(request: web.Request, template: str, **context: Any) -> web.Response:
    session = request.get("session")
    flash = FLASHES.get(request.query.get("flash", ""))
    html = request.app[TEMPLATES_KEY].get_template(template).render(
        session=session, flash=flash, error=context.pop("error", None), **context
    )
    return web.Response(text=html, content_type="text/html")


# ------------------------------------------------------------------------------ sign-in


async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", username="")


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    settings = request.app[SETTINGS_KEY]
    async with request.app[POOL_KEY].acquire() as conn:
        signed_in = await auth.sign_in(conn, username, password, settings.review_session_ttl_s)
    if signed_in is None:
        log.warning("review_sign_in_failed")
        response = render(request, "login.html", username=username, error="Unknown reviewer or wrong password.")
        response.set_status(401)
        return response
    cookie, session = signed_in
    log.info("review_signed_in", reviewer=session.reviewer.username)
    response = web.HTTPFound("/")
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="Strict",
        secure=settings.review_cookie_secure,
        max_age=int(settings.review_session_ttl_s),
    )
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        async with request.app[POOL_KEY].acquire() as conn:
            await auth.sign_out(conn, cookie)
    response = web.HTTPFound("/login?flash=signed_out")
    response.del_cookie(SESSION_COOKIE)
    raise response


# ------------------------------------------------------------------------------ reading


def _queue_filter(query: Any) -> store.QueueFilter:
    try:
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        page = 1
    return store.QueueFilter(
        reason=query.get("reason") or None,
        source=query.get("source") or None,
        age=query.get("age") or None,
        page=page,
    )


async def _queue(request: web.Request) -> tuple[store.QueueFilter, store.QueuePage]:
    filters = _queue_filter(request.query)
    async with request.app[POOL_KEY].acquire() as conn:
        page = await store.queue_page(conn, filters, request.app[SETTINGS_KEY].review_page_size)
    return filters, page


async def queue_view(request: web.Request) -> web.Response:
    filters, page = await _queue(request)
    return render(request, "queue.html", filters=filters, queue=page, age_filters=store.AGE_FILTERS)


def _candidates(result: dict[str, Any], directory: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The matcher's candidates, or (from a matcher that lists none) its best and runner-up."""
    match = result["match"]
    listed = match.get("candidates") or []
    if not listed:
        if match.get("supplier_id"):
            listed.append(
                {"supplier_id": match["supplier_id"], "supplier_name": match["supplier_name"],
                 "score": match["score"], "evidence": match.get("evidence") or []}
            )
        if match.get("runner_up"):
            listed.append({**match["runner_up"], "evidence": []})
    for candidate in listed:
        known = directory.get(candidate["supplier_id"], {})
        candidate.setdefault("city", known.get("city"))
        candidate.setdefault("state", known.get("state"))
        candidate["category"] = known.get("category")
        candidate["alt_name"] = known.get("alt_name")  # tells namesakes apart (a chapter, a DBA)
        candidate["in_directory"] = bool(known)
    return listed


async def _item_context(request: web.Request, record_key: str) -> dict[str, Any]:
    search = request.query.get("q", "").strip()
    async with request.app[POOL_KEY].acquire() as conn:
        item = await store.review_item(conn, record_key)
        if item is None:
            raise web.HTTPNotFound(text="no such review item")
        result = item["result"]
        match = result["match"]
        ids = [c["supplier_id"] for c in match.get("candidates") or []]
        ids += [x for x in (match.get("supplier_id"), (match.get("runner_up") or {}).get("supplier_id")) if x]
        directory = await store.suppliers_by_id(conn, ids)
        payee = ReviewedPayee(item["normalized_name"], item["source_system"], item["place"])
        return {
            "item": item,
            "result": result,
            "record": result["input"],
            "candidates": _candidates(result, directory),
            "search": search,
            "found": await store.search_suppliers(conn, search, request.app[TRGM_KEY]) if search else [],
            "scopes": await store.scope_counts(conn, payee),
            "history": await store.decision_history(conn, item["normalized_name"], limit=20),
            "entity_types": ENTITY_TYPES,
            "scope_choices": SCOPE_CHOICES,
        }


async def item_view(request: web.Request) -> web.Response:
    context = await _item_context(request, request.query.get("key", ""))
    return render(request, "item.html", **context)


async def decisions_view(request: web.Request) -> web.Response:
    async with request.app[POOL_KEY].acquire() as conn:
        history = await store.decision_history(conn, limit=200)
    return render(request, "decisions.html", history=history)


# ------------------------------------------------------------------------------ deciding


async def _decide(request: web.Request, fields: dict[str, Any]) -> store.DecisionOutcome:
    action = str(fields.get("action", ""))
    supplier_id = fields.get("supplier_id") or None
    outcome = OUTCOME_OF_ACTION.get(action)
    if outcome is None:
        raise store.DecisionError("unknown action")
    reviewer = _session(request).reviewer.username
    async with request.app[POOL_KEY].acquire() as conn:
        decided = await store.record_decision(
            conn,
            request.app[PUBLISH_KEY],  # type: ignore[arg-type]
            record_key=str(fields.get("record_key", "")),
            outcome=outcome,
            scope=str(fields.get("scope") or "source_place"),
            reviewer=reviewer,
            supplier_id=supplier_id,
            entity_type=fields.get("entity_type") or None,
            subtype=fields.get("subtype") or None,
            note=fields.get("note") or None,
        )
    metrics.REVIEW_DECISIONS.labels(outcome=decided.decision.outcome).inc()
    log.info(
        "review_decision",
        decision_id=decided.decision.decision_id,
        outcome=decided.decision.outcome,
        reviewer=reviewer,
        items_resolved=len(decided.resolved),
        supersedes=decided.decision.supersedes,
    )
    return decided


def _form_fields(form: Any) -> dict[str, Any]:
    fields = {key: form.get(key) for key in ("record_key", "scope", "supplier_id", "entity_type", "subtype", "note")}
    # The pressed button names the action, with the supplier for candidate buttons: "confirm:ID".
    action = str(form.get("action", ""))
    verb, _, supplier = action.partition(":")
    fields["action"] = verb
    if supplier:
        fields["supplier_id"] = supplier
    return fields


async def decide_form(request: web.Request) -> web.StreamResponse:
    fields = _form_fields(await request.post())
    record_key = str(fields.get("record_key", ""))
    try:
        await _decide(request, fields)
    except store.DecisionError as error:
        context = await _item_context(request, record_key)
        response = render(request, "item.html", error=str(error), **context)
        response.set_status(422)
        return response
    async with request.app[POOL_KEY].acquire() as conn:
        still_open = (await store.review_item(conn, record_key) or {}).get("status") == "open"
        following = record_key if still_open else await store.next_open_item(conn, record_key)
    target = f"/item?{urlencode({'key': following, 'flash': 'decided'})}" if following else "/?flash=decided"
    raise web.HTTPSeeOther(target)


async def undo_form(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    async with request.app[POOL_KEY].acquire() as conn:
        try:
            await store.undo_decision(
                conn, request.app[PUBLISH_KEY], str(form.get("decision_id", "")), _session(request).reviewer.username  # type: ignore[arg-type]
            )
        except store.DecisionError as error:
            raise web.HTTPConflict(text=str(error)) from None
    metrics.REVIEW_DECISIONS.labels(outcome="undo").inc()
    raise web.HTTPSeeOther("/decisions?flash=undone")


# ------------------------------------------------------------------------------ API


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)  # Decimal, UUID


async def api_queue(request: web.Request) -> web.Response:
    _, page = await _queue(request)
    return web.json_response(
        _json_ready(
            {"items": page.items, "matching": page.matching, "total_open": page.total_open,
             "by_reason": dict(page.by_reason), "by_source": dict(page.by_source)}
        )
    )


async def api_item(request: web.Request) -> web.Response:
    context = await _item_context(request, request.query.get("key", ""))
    context.pop("entity_types")
    context.pop("scope_choices")
    return web.json_response(_json_ready(context))


async def api_suppliers(request: web.Request) -> web.Response:
    async with request.app[POOL_KEY].acquire() as conn:
        found = await store.search_suppliers(conn, request.query.get("q", ""), request.app[TRGM_KEY])
    return web.json_response(_json_ready(found))


async def api_decide(request: web.Request) -> web.Response:
    try:
        decided = await _decide(request, await request.json())
    except store.DecisionError as error:
        return web.json_response({"error": str(error)}, status=422)
    return web.json_response(
        {"decision": decided.decision.model_dump(mode="json"), "resolved": decided.resolved}, status=201
    )


async def api_undo(request: web.Request) -> web.Response:
    body = await request.json()
    async with request.app[POOL_KEY].acquire() as conn:
        try:
            reopened = await store.undo_decision(
                conn, request.app[PUBLISH_KEY], str(body.get("decision_id", "")), _session(request).reviewer.username  # type: ignore[arg-type]
            )
        except store.DecisionError as error:
            return web.json_response({"error": str(error)}, status=409)
    return web.json_response({"reopened": reopened})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def metrics_view(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(metrics.REGISTRY), content_type="text/plain", charset="utf-8")


# ------------------------------------------------------------------------------ app


async def refresh_metrics(pool: asyncpg.Pool, settings: Settings) -> None:
    metrics.REVIEW_MAX_AGE.set(settings.review_max_age_s)
    while True:
        try:
            async with pool.acquire() as conn:
                figures = await store.review_metrics(conn)
            metrics.REVIEW_BACKLOG.clear()
            for reason, count in figures["backlog"].items():
                metrics.REVIEW_BACKLOG.labels(reason=reason).set(count)
            metrics.REVIEW_OLDEST_AGE.set(figures["oldest_age_s"])
            metrics.REVIEW_DECISIONS_LAST_HOUR.set(figures["decisions_last_hour"])
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("review_metrics_failed", error_type=type(error).__name__)
        await asyncio.sleep(settings.review_metrics_interval_s)


def kafka_publisher(producer: Any, topic: str) -> store.Publish:
    async def publish_decision(key: str, decision: ReviewDecision | None) -> None:
        value = decision.model_dump_json().encode() if decision is not None else None
        await publish(producer, topic, [OutgoingRecord(key=key.encode(), value=value)])

    return publish_decision


def create_app(settings: Settings, publish_decision: store.Publish | None = None) -> web.Application:
    """The console. ``publish_decision`` replaces the Kafka producer (tests of the store only)."""
    app = web.Application(middlewares=[access_middleware])
    app[SETTINGS_KEY] = settings
    app[TEMPLATES_KEY] = template_environment()

    async def resources(app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(settings, min_size=1, max_size=8)
        app[POOL_KEY] = pool
        async with pool.acquire() as conn:
            app[TRGM_KEY] = await store.trigram_schema(conn)
        refresher = asyncio.create_task(refresh_metrics(pool, settings))
        async with contextlib.AsyncExitStack() as stack:
            if publish_decision is None:
                await ensure_topics(settings)
                producer = await stack.enter_async_context(kafka_producer(settings))
                app[PUBLISH_KEY] = kafka_publisher(producer, settings.topic_decisions)
            else:
                app[PUBLISH_KEY] = publish_decision
            yield
        refresher.cancel()
        await pool.close()

    app.cleanup_ctx.append(resources)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", queue_view)
    app.router.add_get("/item", item_view)
    app.router.add_post("/item/decide", decide_form)
    app.router.add_get("/decisions", decisions_view)
    app.router.add_post("/decisions/undo", undo_form)
    app.router.add_get("/api/queue", api_queue)
    app.router.add_get("/api/item", api_item)
    app.router.add_get("/api/suppliers", api_suppliers)
    app.router.add_post("/api/decisions", api_decide)
    app.router.add_post("/api/decisions/undo", api_undo)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_static("/static/", HERE / "static")
    return app


def serve(settings: Settings) -> None:
    log.info("review_console_starting", host=settings.review_host, port=settings.review_port)
    web.run_app(
        create_app(settings),
        host=settings.review_host,
        port=settings.review_port,
        access_log=None,
        print=None,
    )

