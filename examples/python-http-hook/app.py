"""A hook for rcbackup, written in Python, that POSTs each event as JSON.

Each event it receives goes to the configured `url` as one JSON object
(`{"event": "post-db-backup", "database": "default", ..., "time": "...Z"}`),
with the configured `headers`; a status other than 2xx, or a request that
rcbackup refused, is an error that the entry's `on_error` handles.

It uses the wasi:http bindings componentize-py generates for the `http-hook`
world, with blocking calls only: no asyncio, and not componentize-py's
`poll_loop` helper, which imports `wit_world.imports.types` (in this world the
HTTP types are `wasi_http_types`, since rcbackup's own `types` comes first).

Build (from this folder):
    componentize-py -d ../../guest-sdk/wit -w http-hook componentize app -o python_http_hook.wasm

Config:
    [[hooks]]
    module = "python_http_hook.wasm"
    events = ["post-db-backup", "db-backup-failed"]
    on_error = "warn"
    allow_http = ["https://hooks.example.com"]
    secrets = { token = "HOOK_TOKEN" }
    config = { url = "https://hooks.example.com/rcbackup", headers = { authorization = "Bearer {{secret:token}}" } }
"""

import json
from datetime import datetime, timezone

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import host, outgoing_handler, streams
from wit_world.imports import wasi_http_types as http

# At most this many bytes in one write to the request body.
WRITE_CHUNK = 4096


def describe(code) -> str:
    """An error code in words: rcbackup's own message ("rcbackup refused ...") as it is."""
    if isinstance(code, http.ErrorCode_InternalError) and code.value:
        return code.value
    return type(code).__name__.removeprefix("ErrorCode_")


def split_url(url: str) -> tuple[str, str, str]:
    """(scheme, host[:port], /path?query) of an http:// or https:// URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise Err("config key `url` is not an http:// or https:// URL")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    path = rest[cut:].split("#")[0]
    return scheme, rest[:cut], path if path.startswith("/") else "/" + path


def post(url: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    """POST `body` to `url`; the status and the whole response body.

    Redirects are not followed: a 3xx is returned like any status.
    """
    scheme, authority, path = split_url(url)
    entries = [(name.lower(), value.encode()) for name, value in headers.items()]
    entries.append(("content-type", b"application/json"))
    entries.append(("content-length", str(len(body)).encode()))
    request = http.OutgoingRequest(http.Fields.from_list(entries))
    request.set_method(http.Method_Post())
    request.set_scheme(http.Scheme_Https() if scheme == "https" else http.Scheme_Http())
    request.set_authority(authority)
    request.set_path_with_query(path)
    outgoing = request.body()
    try:
        future = outgoing_handler.handle(request, None)
    except Err as e:
        raise Err(describe(e.value))

    # The body goes out after `handle`, as much as the stream takes at a time.
    with outgoing.write() as stream:
        offset = 0
        while offset < len(body):
            room = stream.check_write()
            if room == 0:
                with stream.subscribe() as ready:
                    ready.block()
                continue
            chunk = body[offset : offset + min(room, WRITE_CHUNK)]
            stream.write(chunk)
            offset += len(chunk)
        stream.blocking_flush()
    http.OutgoingBody.finish(outgoing, None)

    with future:
        with future.subscribe() as ready:
            ready.block()
        answer = future.get()
    if not isinstance(answer, Ok):
        raise Err("no response")
    if not isinstance(answer.value, Ok):
        raise Err(describe(answer.value.value))
    with answer.value.value as response:
        status = response.status()
        chunks = []
        with response.consume() as incoming:
            with incoming.stream() as reader:
                while True:
                    try:
                        chunks.append(reader.blocking_read(65536))
                    except Err as e:
                        if isinstance(e.value, streams.StreamError_Closed):
                            break
                        raise Err("the response was cut short")
    return status, b"".join(chunks)


class Hooks(exports.Hooks):
    def on_event(self, event):
        config = json.loads(host.config())
        url = config.get("url")
        if not isinstance(url, str):
            raise Err("config key `url` is required: the URL to POST events to")
        headers = config.get("headers", {})
        kind = event.kind.name.lower().replace("_", "-")
        message = {
            "event": kind,
            "database": event.database,
            "tenant": event.tenant,
            "backup": event.backup,
            "size": event.size,
            "sha256": event.sha256,
            "duration_ms": event.duration_ms,
            "error": event.error,
            "time": datetime.fromtimestamp(event.now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        status, answer = post(url, json.dumps(message).encode(), headers)
        origin = split_url(url)[1]  # the host only: the path may hold a token
        if not 200 <= status < 300:
            raise Err(f"webhook {origin} answered HTTP {status} on {kind}")
        host.log(host.Level.DEBUG, f"python http hook: {kind} sent to {origin}, HTTP {status}")
