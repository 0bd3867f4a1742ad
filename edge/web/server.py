"""HTTP server of the local page (standard library ``ThreadingHTTPServer``).

Routes (GET unless said):

* ``/``                      the page (``page.html``: inline script and style, no external asset)
* ``/api/state``             JSON: site, cameras (status, frames, frame size, zones, customers in
                             view with ids, boxes and settled garments), MQTT link, last alerts
* ``/frame/<camera>.jpg``    the latest processed frame with boxes, ids, settled garments and
                             zones drawn on it (``X-Frame-Index`` header); 204 before the first frame
* ``/api/analytics?camera=C&day=YYYY-MM-DD``  the day's stored windows of this site (the day in
                             ``service.time_zone``, default the system's) from ``analytics.sqlite``,
                             plus the open window's live counts and the camera's clock, and per
                             rule the day's alerts and those marked false (``rules``)
* ``/api/events?limit=N&before=T&camera=C``  the device's events (edge/events), newest first, N at
                             most 200; ``before`` (epoch s) pages back; ``more`` says whether older ones exist
* ``/events/<alert id>.jpg`` the event's picture (only with ``snapshots.enabled``); 404 without one
* POST ``/api/events/<alert id>/false``  body ``{"false_alert": true|false}`` with
                             ``Content-Type: application/json``: marks (or clears) a false alert. A POST
                             from another origin is refused (403): its ``Origin`` must be this page's,
                             ``Sec-Fetch-Site`` (when sent) same-origin, and a form cannot send JSON

With a password set, every route needs HTTP basic auth (``service.web.username`` / password);
without one, only requests whose ``Host`` is exactly a loopback name or address (``localhost``,
``127.0.0.1``, ``[::1]``, optional port) are served; any other name gets 421 with no frame, which keeps a
web site from reading the frames through DNS rebinding (``127.attacker.example`` resolving to 127.0.0.1).
The response headers forbid framing and any script, style, image or connection outside the page's
own origin (Content-Security-Policy), so the page cannot pull anything from the network either.

Limits: a connection that sends nothing for ``REQUEST_TIMEOUT_S`` is closed; at most
``MAX_CONNECTIONS`` are served at once (one thread each), more get 503 at once; a wrong password
is answered after a delay that doubles with each recent failure from that address (``AUTH_DELAY_*``);
a query value out of range (``day=9999-12-31``) is a 400, never a 500.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from ..localtime import system_time_zone

log = logging.getLogger(__name__)

CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
MAX_ALERTS = 50
REQUEST_TIMEOUT_S = 10.0  # an idle or slow connection is closed after this (before any auth)
MAX_CONNECTIONS = 32  # served at once; the page itself uses 2-3
AUTH_DELAY_MIN_S = 0.25  # first wrong password from an address; doubles per recent failure
AUTH_DELAY_MAX_S = 4.0
AUTH_FAILURE_WINDOW_S = 300.0  # failures older than this are forgotten
MAX_POST_BYTES = 1024  # a false-alert mark is a few bytes
FIRST_DAY, LAST_DAY = date(1970, 1, 2), date(9998, 12, 31)  # days the analytics query accepts
ZONE_COLOURS = [(0, 200, 255), (255, 160, 0), (200, 0, 255), (0, 255, 120)]


@dataclass
class _Live:
    image: np.ndarray
    index: int
    timestamp: float
    customers: list[dict]
    jpeg: bytes | None = None


@dataclass
class WebState:
    """What the page shows; the daemon feeds it (``update_frame``, ``add_alert``) from camera threads.

    ``status()`` returns ``{"cameras": {name: {...}}, "mqtt": {...}}`` when asked (daemon state).
    """

    site: str
    cameras: list[str]
    # camera -> [{"name" (a named zone) or "rule" (a rule's own polygon), "polygon" (pixels), "rules"}]
    zones: dict[str, list[dict]] = field(default_factory=dict)
    analytics_db: Path | None = None
    status: Callable[[], dict] | None = None
    live_counts: Callable[[str], dict | None] | None = None
    jpeg_quality: int = 70
    frame_interval_s: float = 0.3
    # the store's time zone (IANA name): days and times of the page are in it, 24 h
    time_zone: str = field(default_factory=lambda: system_time_zone())
    # camera -> the clock of its timestamps: "wall" (a live camera) or "video" (a file: the run's
    # start + the time in the video, so a window can lie in the wall clock's future)
    clocks: dict[str, str] = field(default_factory=dict)
    events: object = None  # edge.events.EventStore of the daemon (None: no event list)
    _live: dict[str, _Live] = field(default_factory=dict)
    _alerts: deque = field(default_factory=lambda: deque(maxlen=MAX_ALERTS))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- fed by the daemon ---------------------------------------------------------------------
    def update_frame(self, camera: str, image: np.ndarray, index: int, timestamp: float,
                     customers: list[dict]) -> None:
        with self._lock:
            self._live[camera] = _Live(image, int(index), float(timestamp), customers)

    def add_alert(self, alert: dict) -> None:
        with self._lock:
            self._alerts.appendleft(alert)

    # -- read by the server --------------------------------------------------------------------
    def alerts(self) -> list[dict]:
        with self._lock:
            return list(self._alerts)

    def frame_jpeg(self, camera: str) -> tuple[bytes, int] | None:
        with self._lock:
            live = self._live.get(camera)
        if live is None:
            return None
        if live.jpeg is None:  # encoded once per frame, on demand (no cost while nobody looks)
            annotated = annotate(live.image, live.customers, self.zones.get(camera, []))
            ok, buf = cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            live.jpeg = buf.tobytes() if ok else b""
        return live.jpeg, live.index

    def state(self) -> dict:
        extra = self.status() if self.status else {}
        cams = []
        with self._lock:
            lives = dict(self._live)
        for name in self.cameras:
            live = lives.get(name)
            entry = {"name": name, "zones": self.zones.get(name, []),
                     "frame_index": live.index if live else None,
                     "size": [int(live.image.shape[1]), int(live.image.shape[0])] if live else None,
                     "customers": live.customers if live else []}
            entry.update(extra.get("cameras", {}).get(name, {}))
            cams.append(entry)
        for entry in cams:
            entry["clock"] = self.clocks.get(entry["name"], "wall")
        return {"site": self.site, "time": time.time(), "time_zone": self.time_zone,
                "frame_interval_s": self.frame_interval_s, "cameras": cams, "mqtt": extra.get("mqtt", {}),
                "alerts": self.alerts()}

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def today(self) -> date:
        return datetime.now(self.zone()).date()


def annotate(image: np.ndarray, customers: list[dict], zones: list[dict]) -> np.ndarray:
    """A copy of the frame with zones, customer boxes, ids and settled garments drawn on it."""
    out = image.copy()
    for i, zone in enumerate(zones):
        pts = np.array(zone["polygon"], np.int32).reshape(-1, 1, 2)
        colour = ZONE_COLOURS[i % len(ZONE_COLOURS)]
        cv2.polylines(out, [pts], True, colour, 2, cv2.LINE_AA)
        x, y = pts[0, 0]
        cv2.putText(out, f"zone {zone.get('name') or zone.get('rule', '')}", (int(x) + 4, int(y) + 16),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    colour, 1, cv2.LINE_AA)
    for c in customers:
        x1, y1, x2, y2 = (int(round(v)) for v in c["box"])
        settled = c.get("garments", [])
        colour = (0, 200, 0) if settled else (255, 255, 255)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        lines = [f"#{c['id']}"] + [f"{g['label']} {g['score']:.2f}" for g in settled]
        height, width = out.shape[:2]
        for j, text in enumerate(lines):
            (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
            # inside the frame: a box at an edge (or partly outside it) keeps its whole tag readable
            y = max(h + 3, y1 - 4) if j == 0 else y1 + 4 + 14 * j
            y = min(y, height - 4)
            x = min(max(0, x1), max(0, width - w - 4))
            cv2.rectangle(out, (x, y - h - 3), (x + w + 4, y + 3), (0, 0, 0), -1)
            cv2.putText(out, text, (x + 2, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    return out


def customers_of(pipeline) -> list[dict]:
    """The customers in view of a ``CameraPipeline`` (id, box, settled garments, fired rules)."""
    out = []
    for customer in pipeline.customers:
        if customer.box is None or customer.last_seen != pipeline.last_timestamp:
            continue  # lost this frame: not drawn
        garments = sorted(({"label": g.label, "score": round(float(g.score), 3)}
                           for g in customer.votes.settled_by_slot().values()), key=lambda g: -g["score"])
        out.append({"id": int(customer.id), "box": [round(float(v), 1) for v in customer.box],
                    "garments": garments, "rules": sorted(customer.fired_rules)})
    return out


def read_day_windows(db_path: Path | None, camera: str | None, day: date, site: str | None = None,
                     zone: ZoneInfo | None = None) -> list[dict]:
    """Stored analytics windows of ``site`` that start within ``day`` in ``zone`` (default: the
    system's; oldest first); [] without a file. Another site's rows in a shared state directory
    are left out."""
    from ..analytics import summary_from_row

    if db_path is None or not Path(db_path).is_file():
        return []
    zone = zone or ZoneInfo(system_time_zone())
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone).timestamp()
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone).timestamp()
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2)
        try:
            conn.row_factory = sqlite3.Row
            query = "SELECT * FROM windows WHERE window_start >= ? AND window_start < ?"
            args: list = [start, end]
            if site:
                query += " AND site = ?"
                args.append(site)
            if camera:
                query += " AND camera = ?"
                args.append(camera)
            rows = conn.execute(query + " ORDER BY window_start, camera", args).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.warning("web: cannot read %s (%s)", db_path, exc)
        return []
    return [summary_from_row(r) for r in rows]


def _page() -> bytes:
    return resources.files(__package__).joinpath("page.html").read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        self.timeout = self.server.request_timeout_s  # socket timeout: idle keep-alive connections end too
        super().setup()

    def log_message(self, fmt, *args):  # keep the daemon's log for the daemon
        log.debug("web %s - %s", self.address_string(), fmt % args)

    def _send(self, code: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data, code: int = 200) -> None:
        self._send(code, json.dumps(data, default=_jsonable).encode(), "application/json")

    def _authorised(self) -> bool:
        password = self.server.password
        if password is None:
            return True
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, given = base64.b64decode(header[6:]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user, given = "", ""
            ok_user = hmac.compare_digest(user.encode(), self.server.username.encode())
            ok_pass = hmac.compare_digest(given.encode(), password.encode())
            if ok_user and ok_pass:
                self.server.auth_succeeded(self.client_address[0])
                return True
            delay = self.server.auth_failed(self.client_address[0])
            log.warning("web: wrong user name or password from %s (answered after %.2f s)",
                        self.client_address[0], delay)
            time.sleep(delay)  # a password guesser gets a few tries a second per connection, at most
        self._send(401, b"authentication required\n", "text/plain",
                   {"WWW-Authenticate": 'Basic realm="fashion-edge", charset="UTF-8"'})
        return False

    def do_HEAD(self):
        self.do_GET()

    def _host_allowed(self) -> bool:
        """Without a password only exact loopback names are served: a web site cannot read the frames
        through DNS rebinding (a name of its own, say 127.attacker.example, that resolves to 127.0.0.1).
        With a password any name is served (the password is what a rebinding page lacks)."""
        if self.server.password is not None:
            return True
        hosts = self.headers.get_all("Host") or []
        if len(hosts) == 1 and is_loopback_host(hosts[0], self.server.listen_host):
            return True
        log.debug("web: refused Host %r from %s (no password: loopback names only)", hosts,
                  self.address_string())
        self._send(421, b"misdirected request: without a password only localhost, 127.x.x.x or [::1] "
                        b"are served\n", "text/plain", {"Connection": "close"})
        self.close_connection = True
        return False

    def do_POST(self):
        def answer(url):
            body = self._post_body()
            if body is not None:
                self.route_post(url, body)

        self._answer(answer, "POST ")

    def _answer(self, route, what: str = "") -> None:
        """Host and auth checked, then ``route(url)``; a client gone mid-answer is nothing, any other
        failure one log line and a 500 (the page never takes the daemon down)."""
        if not self._host_allowed() or not self._authorised():
            return
        url = urlparse(self.path)
        try:
            route(url)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:
            log.exception("web: %s%s failed", what, url.path)
            try:
                self._send(500, b"internal error\n", "text/plain")
            except OSError:
                pass

    def _post_body(self):
        """The JSON body of a same-origin POST, or None once the refusal is sent. A cross-site page can
        make a browser POST a form (no JSON content type) or, with a JSON type, only after a CORS
        preflight this server never answers; Origin and Sec-Fetch-Site are checked besides."""
        self.close_connection = True  # a refused body is not read: no keep-alive after a POST
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            self._json({"error": "Content-Type must be application/json"}, 415)
            return None
        origin = self.headers.get("Origin")
        host = self.headers.get("Host", "")
        if origin is not None and origin.lower() not in (f"http://{host}".lower(), f"https://{host}".lower()):
            log.warning("web: refused a POST from origin %r (page %r)", origin, host)
            self._json({"error": "cross-origin request refused"}, 403)
            return None
        if self.headers.get("Sec-Fetch-Site", "same-origin").lower() not in ("same-origin", "none"):
            self._json({"error": "cross-site request refused"}, 403)
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_POST_BYTES:
            self._json({"error": f"body must be at most {MAX_POST_BYTES} bytes"}, 413)
            return None
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._json({"error": "body is not JSON"}, 400)
            return None

    def route_post(self, url, body) -> None:
        """POST routes: the false-alert mark of an event."""
        events = getattr(self.server.state, "events", None)
        match = _FALSE_ALERT.fullmatch(url.path)
        if events is None or match is None:
            self._send(404, b"not found\n", "text/plain")
            return
        if not isinstance(body, dict) or not isinstance(body.get("false_alert"), bool):
            self._json({"error": 'body must be {"false_alert": true} or {"false_alert": false}'}, 400)
            return
        event = events.mark_false(match.group(1), body["false_alert"])
        if event is None:
            self._json({"error": "no such event"}, 404)
            return
        log.info("web: event %s marked %s", event["id"], "a false alert" if event["false_alert"] else "not false")
        self._json(event)

    def do_GET(self):
        self._answer(self.route)

    def route(self, url) -> None:
        """Answer one GET of an authorised client (Host checked, auth passed); a subclass given to
        ``WebServer(handler=...)`` overrides it to serve other routes with the same checks and limits."""
        state: WebState = self.server.state
        if url.path in ("/", "/index.html"):
            self._send(200, _page(), "text/html; charset=utf-8")
        elif url.path == "/api/state":
            self._json(state.state())
        elif url.path.startswith("/frame/") and url.path.endswith(".jpg"):
            camera = url.path[len("/frame/"):-len(".jpg")]
            if camera not in state.cameras:
                self._send(404, b"no such camera\n", "text/plain")
                return
            got = state.frame_jpeg(camera)
            if got is None:  # not an error (the page polls before the first frame): nothing yet
                self._send(204, b"", "image/jpeg")
                return
            jpeg, index = got
            self._send(200, jpeg, "image/jpeg", {"X-Frame-Index": str(index)})
        elif url.path == "/api/analytics":
            query = parse_qs(url.query)
            camera = query.get("camera", [None])[0]
            try:
                day = date.fromisoformat(query["day"][0]) if "day" in query else state.today()
            except ValueError:
                self._json({"error": "day must be YYYY-MM-DD"}, 400)
                return
            if not FIRST_DAY <= day <= LAST_DAY:
                self._json({"error": f"day must be between {FIRST_DAY} and {LAST_DAY}"}, 400)
                return
            windows = read_day_windows(state.analytics_db, camera, day, state.site, state.zone())
            live = state.live_counts(camera) if (state.live_counts and camera) else None
            rules = day_rule_counts(state.events, camera, day, state.zone())
            from ..plot_style import label_colour

            # one colour per label, the same as in `fashion-edge report` and the training figures
            labels = {g for w in windows for g in w["garments"]} | {"dress", "suit"}
            self._json({"day": day.isoformat(), "camera": camera, "site": state.site,
                        "time_zone": state.time_zone, "clock": state.clocks.get(camera, "wall"),
                        "windows": windows, "live": live, "rules": rules,
                        "colours": {label: label_colour(label) for label in sorted(labels)}})
        elif url.path == "/api/events":
            self._events_page(state, parse_qs(url.query))
        elif url.path.startswith("/events/") and url.path.endswith(".jpg"):
            alert_id = url.path[len("/events/"):-len(".jpg")]
            path = state.events.snapshot_path(alert_id) if state.events is not None and _ALERT_ID.fullmatch(alert_id) \
                else None
            if path is None:
                self._send(404, b"no picture for this event\n", "text/plain")
                return
            try:
                jpeg = path.read_bytes()
            except OSError:  # removed by retention a moment ago
                self._send(404, b"no picture for this event\n", "text/plain")
                return
            self._send(200, jpeg, "image/jpeg")
        elif url.path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
        else:
            self._send(404, b"not found\n", "text/plain")


    def _events_page(self, state: WebState, query: dict) -> None:
        if state.events is None:
            self._json({"events": [], "more": False, "enabled": False})
            return
        try:
            limit = int(query.get("limit", ["50"])[0])
            before = float(query["before"][0]) if "before" in query else None
        except ValueError:
            self._json({"error": "limit must be a whole number and before epoch seconds"}, 400)
            return
        if not 1 <= limit <= 200 or (before is not None and not 0 <= before < 1e11):
            self._json({"error": "limit must be 1..200 and before epoch seconds"}, 400)
            return
        camera = query.get("camera", [None])[0]
        rows = state.events.events(limit + 1, before, camera)
        self._json({"events": rows[:limit], "more": len(rows) > limit, "enabled": True})


def day_rule_counts(events, camera: str | None, day: date, zone: ZoneInfo) -> list[dict]:
    """Per rule, the day's alerts and those marked false (the events of ``camera``, or all)."""
    if events is None:
        return []
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone).timestamp()
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone).timestamp()
    totals: dict[str, dict] = {}
    for (_, rule), counts in events.rule_counts(start, end, camera).items():
        entry = totals.setdefault(rule, {"rule": rule, "alerts": 0, "false": 0})
        entry["alerts"] += counts["alerts"]
        entry["false"] += counts["false"]
    return [totals[r] for r in sorted(totals)]


Handler = _Handler  # public name: the base of another page's handler (edge/chain/web.py)


_HOST_PORT = re.compile(r"(?::(\d{1,5}))?")
_ALERT_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
_FALSE_ALERT = re.compile(r"/api/events/([0-9A-Za-z_-]{1,64})/false")


def is_loopback_host(header: str, listen_host: str = "") -> bool:
    """True for a ``Host`` header that is exactly ``localhost``, a dotted-quad 127.0.0.0/8 address,
    a bracketed IPv6 loopback (``[::1]``) or the literal address the server listens on, each with an
    optional port. A name that only starts or ends like one (``127.attacker.example``,
    ``127.0.0.1.nip.io``, ``127.0.0.1@evil``, ``localhost.``) is not: it is somebody's DNS name."""
    import ipaddress

    host = header.lower()
    if host.startswith("["):
        name, sep, rest = host[1:].partition("]")
        if not sep:
            return False
        try:
            address = ipaddress.IPv6Address(name)
        except ValueError:
            return False
        mapped = address.ipv4_mapped
        loopback = address.is_loopback or (mapped is not None and mapped.is_loopback)
    else:
        name, _, rest = host.partition(":")
        rest = ":" + rest if _ else ""
        if name == "localhost":
            loopback = True
        else:
            try:  # strict dotted quad: no 127.1, no leading zeros, no hex
                loopback = ipaddress.IPv4Address(name).is_loopback
            except ValueError:
                loopback = False
            if not loopback and listen_host and name == listen_host.lower():
                # the literal address the server listens on (an explicit bind, never a DNS name)
                try:
                    ipaddress.ip_address(name)
                    loopback = True
                except ValueError:
                    pass
    port = _HOST_PORT.fullmatch(rest)
    return bool(loopback and port and (port.group(1) is None or int(port.group(1)) <= 65535))


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return str(value)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64  # a burst of connections is accepted (and refused with 503 past the cap) at once

    def __init__(self, address, state: WebState, username: str, password: str | None,
                 request_timeout_s: float = REQUEST_TIMEOUT_S, max_connections: int = MAX_CONNECTIONS,
                 handler: type[_Handler] = _Handler):
        import socket

        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)
        self.state = state
        self.username = username
        self.password = password
        self.listen_host = address[0]
        self.request_timeout_s = float(request_timeout_s)
        self.max_connections = int(max_connections)
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._failures: dict[str, list[float]] = {}  # client address -> monotonic times of wrong passwords
        self._failures_lock = threading.Lock()

    # -- connection cap: one thread per connection, at most max_connections ---------------------
    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            try:  # answered without a thread: the cap is what keeps idle sockets from using them up
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                                b"Content-Length: 20\r\nConnection: close\r\nRetry-After: 5\r\n\r\n"
                                b"too many connections")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    # -- wrong passwords ------------------------------------------------------------------------
    def auth_failed(self, address: str) -> float:
        """Record a wrong password from ``address``; the delay before answering it."""
        now = time.monotonic()
        with self._failures_lock:
            recent = [t for t in self._failures.get(address, []) if now - t < AUTH_FAILURE_WINDOW_S]
            recent.append(now)
            self._failures[address] = recent[-32:]
            if len(self._failures) > 1024:  # many addresses: forget the quietest
                oldest = min(self._failures, key=lambda a: self._failures[a][-1])
                self._failures.pop(oldest, None)
            return min(AUTH_DELAY_MAX_S, AUTH_DELAY_MIN_S * 2 ** (len(recent) - 1))

    def auth_succeeded(self, address: str) -> None:
        with self._failures_lock:
            self._failures.pop(address, None)


class WebServer:
    def __init__(self, state: WebState, host: str = "127.0.0.1", port: int = 8080, username: str = "admin",
                 password: str | None = None, request_timeout_s: float = REQUEST_TIMEOUT_S,
                 max_connections: int = MAX_CONNECTIONS, handler: type[_Handler] = _Handler,
                 name: str = "web page"):
        """``handler``: a ``Handler`` subclass whose ``route`` serves another page (the chain view)
        behind the same Host check, basic auth, connection cap and timeouts; ``state`` is what its
        routes read (``self.server.state``)."""
        self.state = state
        self.host = host
        self.name = name
        self._server = _Server((host, port), state, username, password, request_timeout_s, max_connections,
                               handler)
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> "WebServer":
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="web", daemon=True)
        self._thread.start()
        log.info("%s on %s", self.name, self.url)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)
