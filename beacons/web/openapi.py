"""The OpenAPI 3.1 description of the JSON API, served at ``/openapi.json``.

Written out by hand next to the handlers it describes; a test checks that every
API route in ``beacons.web.api.ROUTES`` appears here and the other way round.
"""

from __future__ import annotations

from typing import Any

from beacons import __version__
from beacons.nlp.labels import INTENTS, SENTIMENTS

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_INT = {"type": "integer"}
_HEALTH_DB = {
    "type": "object",
    "properties": {"backend": {"enum": ["sqlite", "postgresql"]}, "ok": {"type": "boolean"}},
}

BEACON = {
    "type": "object",
    "required": [
        "id",
        "queue",
        "status",
        "priority",
        "brand",
        "title",
        "text",
        "source",
        "sentiment",
        "thread_id",
        "related",
    ],
    "properties": {
        "id": _INT,
        "queue": {"enum": ["support", "advocacy", "none"]},
        "status": {"enum": ["new", "claimed", "resolved", "dismissed"]},
        "priority": {"type": "integer", "minimum": 0, "maximum": 100},
        "brand": _NSTR,
        "product": _NSTR,
        "team": _NSTR,
        "assignee": _NSTR,
        "title": _STR,
        "text": _STR,
        "url": _NSTR,
        "source": _STR,
        "author": _NSTR,
        "published_at": _NSTR,
        "fetched_at": _NSTR,
        "created_at": _NSTR,
        "updated_at": _NSTR,
        "sentiment": {"enum": ["negative", "neutral", "positive"]},
        "sentiment_score": {"type": "number"},
        "is_beacon": {"type": "boolean"},
        "scores": {"type": "object", "additionalProperties": {"type": "number"}},
        "reason": _STR,
        "intents": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "intent -> score (0.5 and above: the post has it); a person's correction scores 1",
        },
        "author_reach": {"type": ["integer", "null"]},
        "thread_id": {
            **_INT,
            "description": "the first beacon of the thread this one belongs to (its own id when alone)",
        },
        "related": {**_INT, "description": "other beacons in the thread, counted on its first beacon"},
        "waited_seconds": {**_INT, "description": "since it arrived: until now while open, until closed after"},
        "sla_breached": {"type": "boolean", "description": "open longer than its routing.sla limit"},
        "why": {**_STR, "description": "why it is in its queue, in one plain sentence (rule, scores, passage, team)"},
    },
}
EVENT = {
    "type": "object",
    "properties": {
        k: _NSTR
        for k in ("at", "actor", "action", "from_status", "to_status", "from_queue", "to_queue", "assignee", "detail")
    }
    | {"id": _INT, "beacon_id": _INT},
}
NOTE = {"type": "object", "properties": {"id": _INT, "at": _STR, "author": _STR, "text": _STR}}
_ERROR_BODY = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": _STR, "message": _STR, "status": _STR, "assignee": _NSTR},
}
ERROR = {"type": "object", "required": ["error"], "properties": {"error": _ERROR_BODY}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "invalid input",
        401: "no valid token",
        403: "CSRF check failed, a by naming someone else, or a role that does not allow it",
        404: "no such beacon, user or source",
        409: "the beacon's state does not allow it (someone else was first)",
    }
    return {str(c): _json(_ref("Error"), text[c]) for c in codes}


def _action(name: str, summary: str, body: dict[str, Any], result: dict[str, Any], ok: str = "200") -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "operationId": f"{name}Beacon",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": _INT}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {ok: _json(result), **_errors(400, 401, 403, 404, 409)},
        }
    }


def _body(required: list[str], **props: Any) -> dict[str, Any]:
    by = {
        "type": "string",
        "maxLength": 100,
        "description": "who does it: required with a service token; for a person (personal token or password "
        "sign-in) the actor is that person, and a by naming anyone else is refused with 403",
    }
    return {"type": "object", "required": required, "properties": {"by": by, **props}}


USER = {
    "type": "object",
    "required": ["name", "role", "active"],
    "properties": {
        "name": _STR,
        "role": {"enum": ["agent", "lead", "admin"]},
        "created_at": _STR,
        "disabled_at": _NSTR,
        "active": {"type": "boolean"},
        "has_password": {"type": "boolean"},
        "tokens": {**_INT, "description": "personal API tokens not revoked"},
        "sessions": {**_INT, "description": "sign-in sessions not revoked"},
    },
}


def _user_paths() -> dict[str, Any]:
    user_result = _json({"type": "object", "properties": {"user": _ref("User")}})
    return {
        "/api/me": {
            "get": {
                "summary": "Who the server takes the caller for: a person and their role, or a service token",
                "operationId": "getMe",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "name": _NSTR,
                                "role": {"enum": ["agent", "lead", "admin", None]},
                                "via": {"enum": ["personal_token", "service_token", "session", "loopback"]},
                            },
                        }
                    ),
                    **_errors(401),
                },
            }
        },
        "/api/users": {
            "get": {
                "summary": "Every user (admin)",
                "operationId": "listUsers",
                "responses": {
                    "200": _json({"type": "object", "properties": {"users": {"type": "array", "items": _ref("User")}}}),
                    **_errors(401, 403),
                },
            },
            "post": {
                "summary": "Add a user (admin); passwords and tokens are given with the CLI",
                "operationId": "addUser",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": _STR, "role": {"enum": ["agent", "lead", "admin"]}},
                            }
                        }
                    },
                },
                "responses": {"201": user_result, **_errors(400, 401, 403, 409)},
            },
        },
        "/api/users/{name}/disable": {
            "post": {
                "summary": "Disable a user (admin): their tokens and sessions stop working at once",
                "operationId": "disableUser",
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": _STR}],
                "responses": {"200": user_result, **_errors(401, 403, 404)},
            }
        },
    }


SOURCE = {
    "type": "object",
    "required": ["id", "kind", "status", "broken", "paused"],
    "properties": {
        "id": _STR,
        "kind": _STR,
        "status": {"type": "string", "description": "ok, not_modified, error, bug, never polled or paused"},
        "broken": {"type": "boolean", "description": "its last poll failed"},
        "last_poll_at": _NSTR,
        "last_success_at": _NSTR,
        "last_error": {**_NSTR, "description": "secrets scrubbed"},
        "consecutive_errors": _INT,
        "backoff": {"type": "string", "description": 'e.g. "on schedule", "backing off: 3 failed polls in a row"'},
        "next_poll_at": _NSTR,
        "paused": {"type": "boolean"},
        "paused_at": _NSTR,
        "paused_by": _NSTR,
        "items_per_day": {**_INT, "description": "new posts stored from it in the last 24 hours"},
        "polls": _INT,
        "errors": _INT,
    },
}


def _source_paths() -> dict[str, Any]:
    """The Sources page's API (issue 13 §6): a lead or admin (or a service token); an agent gets 403."""
    result = _json({"type": "object", "properties": {"source": SOURCE}})
    paths: dict[str, Any] = {
        "/api/sources": {
            "get": {
                "summary": "Every configured source with its health (lead or admin)",
                "operationId": "listSources",
                "responses": {
                    "200": _json({"type": "object", "properties": {"sources": {"type": "array", "items": SOURCE}}}),
                    **_errors(401, 403),
                },
            }
        }
    }
    for action, summary in (
        ("poll", "Poll it as soon as a worker can"),
        ("pause", "Stop polling it until resumed (every worker honours it)"),
        ("resume", "Poll it again, at once"),
    ):
        paths[f"/api/sources/{{source}}/{action}"] = {
            "post": {
                "summary": f"{summary} (lead or admin)",
                "operationId": f"{action}Source",
                "parameters": [{"name": "source", "in": "path", "required": True, "schema": _STR}],
                "responses": {"200": result, **_errors(401, 403, 404)},
            }
        }
    return paths


def insight_paths() -> dict[str, Any]:
    from beacons.web.insights import OPENAPI_PATHS  # issue 14: described beside its handler

    return OPENAPI_PATHS


def document(public_url: str | None = None) -> dict[str, Any]:
    beacon_result = {"type": "object", "properties": {"beacon": _ref("Beacon")}}
    note_text = {"type": "string", "maxLength": 5000}
    query = [
        {
            "name": "queue",
            "in": "query",
            "schema": {"enum": ["support", "advocacy", "none", "all"]},
            "description": "default: support and advocacy",
        },
        {
            "name": "status",
            "in": "query",
            "schema": {"enum": ["new", "claimed", "resolved", "dismissed", "open"]},
            "description": "open = new or claimed; default: all",
        },
        {"name": "brand", "in": "query", "schema": _STR},
        {"name": "product", "in": "query", "schema": _STR},
        {"name": "team", "in": "query", "schema": _STR},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
        {"name": "cursor", "in": "query", "schema": _STR, "description": "next_cursor from the previous page"},
        {
            "name": "threads",
            "in": "query",
            "schema": {"type": "boolean", "default": True},
            "description": "false: list every beacon of a thread",
        },
        # issue 13 §2: the inbox's search and filters; any other parameter is a 400 naming it
        {"name": "q", "in": "query", "schema": _STR, "description": "every word in the title, text, author or notes"},
        {"name": "assignee", "in": "query", "schema": _STR, "description": "a person's name, or me"},
        {
            "name": "since",
            "in": "query",
            "schema": _STR,
            "description": "posted at or after: an ISO date or date-time, or back from now (30m, 2h, 7d, 2w)",
        },
        {
            "name": "until",
            "in": "query",
            "schema": _STR,
            "description": "posted before: as since; a date includes that whole day",
        },
        {"name": "sentiment", "in": "query", "schema": {"enum": ["negative", "neutral", "positive"]}},
        {"name": "intent", "in": "query", "schema": _STR, "description": "an intent scored at least 0.5"},
        {"name": "source", "in": "query", "schema": _STR, "description": "a source id"},
    ]
    paths: dict[str, Any] = {
        "/api/beacons": {
            "get": {
                "summary": "Beacons, highest priority first; a thread shows as its first beacon",
                "operationId": "listBeacons",
                "parameters": query,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {"beacons": {"type": "array", "items": _ref("Beacon")}, "next_cursor": _NSTR},
                        }
                    ),
                    **_errors(400, 401),
                },
            }
        },
        "/api/beacons/{id}": {
            "get": {
                "summary": "One beacon with its notes, history and thread",
                "operationId": "getBeacon",
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": _INT}],
                "responses": {
                    "200": _json(
                        {
                            "allOf": [
                                _ref("Beacon"),
                                {
                                    "type": "object",
                                    "properties": {
                                        "notes": {"type": "array", "items": _ref("Note")},
                                        "history": {"type": "array", "items": _ref("Event")},
                                        "thread": {"type": "array", "items": {"type": "object"}},
                                    },
                                },
                            ]
                        }
                    ),
                    **_errors(401, 404),
                },
            }
        },
        "/api/beacons/{id}/claim": _action(
            "claim",
            "new -> claimed; exactly one of two concurrent claims wins (the other gets 409)",
            _body(
                [],
                assignee={
                    "type": "string",
                    "description": "default: the actor; someone else only for a lead or admin (or a service token)",
                },
            ),
            beacon_result,
        ),
        "/api/beacons/{id}/resolve": _action(
            "resolve", "new or claimed -> resolved", _body([], note=note_text), beacon_result
        ),
        "/api/beacons/{id}/dismiss": _action(
            "dismiss", "new or claimed -> dismissed", _body([], note=note_text), beacon_result
        ),
        "/api/beacons/{id}/reroute": _action(
            "reroute",
            "Move to another queue; stored as a training label",
            _body(["queue"], queue={"enum": ["support", "advocacy", "none"]}, note=note_text),
            beacon_result,
        ),
        "/api/beacons/{id}/reopen": _action(
            "reopen",
            "resolved or dismissed -> new and unassigned (the history keeps what it was)",
            _body([], note=note_text),
            beacon_result,
        ),
        "/api/beacons/{id}/reassign": _action(
            "reassign",
            "Give a claimed beacon to someone else: a lead or admin, or its holder; the assignee must be an active"
            " user (service tokens may name anyone)",
            _body(["assignee"], assignee={"type": "string", "description": "the user to give it to"}, note=note_text),
            beacon_result,
        ),
        "/api/beacons/{id}/undo": _action(
            "undo",
            "Undo the caller's last claim, resolve, dismiss or re-route of the beacon (its status, queue, holder,"
            " priority and team come back; the history keeps both); 409 when someone else acted on it since or it"
            " was undone already",
            _body([]),
            beacon_result,
        ),
        "/api/beacons/{id}/reply": _action(
            "reply",
            "Fill in a saved reply (replies: in the config) with the beacon's author, brand, product and link,"
            ' and add the note "replied with template NAME" to its history',
            _body(["template"], template={"type": "string", "description": "the name of a saved reply"}),
            {
                "type": "object",
                "properties": {"beacon_id": _INT, "template": _STR, "text": _STR},
            },
            "201",
        ),
        "/api/beacons/bulk": {
            "post": {
                "summary": "One action on several beacons, a result per id (one failure undoes nothing else);"
                " reroute in bulk needs the lead role",
                "operationId": "bulkBeacons",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["ids", "action"],
                                "properties": {
                                    "ids": {"type": "array", "items": _INT, "minItems": 1, "maxItems": 200},
                                    "action": {"enum": ["claim", "resolve", "dismiss", "reroute"]},
                                    "queue": {
                                        "enum": ["support", "advocacy", "none"],
                                        "description": "for reroute",
                                    },
                                    "note": note_text,
                                    "assignee": {"type": "string", "description": "for claim, as in claim"},
                                    "by": _body([])["properties"]["by"],
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "results": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["id", "ok"],
                                        "properties": {
                                            "id": _INT,
                                            "ok": {"type": "boolean"},
                                            "beacon": _ref("Beacon"),
                                            "error": _ERROR_BODY,
                                        },
                                    },
                                },
                                "done": _INT,
                                "failed": _INT,
                            },
                        }
                    ),
                    **_errors(400, 401, 403),
                },
            }
        },
        "/api/beacons/{id}/label": _action(
            "label",
            "Correct the sentiment toward the brand and/or the intents; stored as training labels",
            {
                "type": "object",
                "required": ["by"],
                "properties": {
                    "by": _body([])["properties"]["by"],
                    "sentiment": {"enum": list(SENTIMENTS)},
                    "intents": {
                        "type": "array",
                        "items": {"enum": list(INTENTS)},
                        "description": "replaces the beacon's intents; [] for none",
                    },
                },
                "anyOf": [{"required": ["sentiment"]}, {"required": ["intents"]}],
            },
            beacon_result,
        ),
        "/api/beacons/{id}/note": _action(
            "note",
            "Add a note",
            _body(["text"], text=note_text),
            {"type": "object", "properties": {"note": _ref("Note")}},
            "201",
        ),
        "/api/version": {
            "get": {
                "summary": "A value that changes when beacons arrive or change (the page polls it)",
                "operationId": "getVersion",
                "responses": {"200": _json({"type": "object", "properties": {"version": _STR}}), **_errors(401)},
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "getOpenAPI",
                "responses": {"200": _json({"type": "object"})},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics: beacons by queue and status, polls and errors per source, alert backlog",
                "operationId": "getMetrics",
                "responses": {
                    "200": {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {"schema": _STR}}},
                    **_errors(401),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness and database check (no token needed)",
                "operationId": "getHealth",
                "security": [],
                "responses": {
                    "200": _json({"type": "object", "properties": {"status": {"const": "ok"}, "database": _HEALTH_DB}}),
                    "503": _json(
                        {"type": "object", "properties": {"status": {"const": "error"}, "database": _HEALTH_DB}},
                        "database unavailable",
                    ),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "beacons queue API",
            "version": __version__,
            "description": "Read and work the support and advocacy queues. Send Authorization: Bearer <token>: "
            "a personal token (beacons users token NAME) or a service token (serve.tokens).",
        },
        "servers": [{"url": public_url or "http://127.0.0.1:8080"}],
        "security": [{"bearer": []}],
        "paths": {**paths, **_user_paths(), **_source_paths(), **insight_paths()},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Beacon": BEACON, "Event": EVENT, "Note": NOTE, "Error": ERROR, "User": USER},
        },
    }
