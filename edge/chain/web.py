"""The chain view: the head office's page of the stores' figures, served by the collector (``web:`` in
hq.yaml, docs/chain.md).

Routes (GET, each with ``?since=YYYY-MM-DD&until=YYYY-MM-DD``, UTC days, ``until`` excluded; default
the ``web.period_days`` days up to and including today):

* ``/``            one table, per store and chain-wide (``ALL``): customers, dress and suit share,
                   alerts per rule, dwell, top garments; links to the period before and after
* ``/api/chain``   the same figures as JSON (``StoreFigures.as_dict``: the CSV's names)

The figures are the chain report's (``report.chain_figures`` / ``chain_total``): one definition of
each, whether read on the page, in JSON, in ``chain_stores.csv`` or in the charts. Each request opens
its own read-only connection (``default_transaction_read_only``, a statement timeout), so a slow or
absent database costs a request a 503, never the collector its work.

The server is the store page's (``edge/web/server.py``) with another ``route``: the same Host check
(no password: loopback names only), HTTP basic auth with growing delays after wrong passwords,
connection cap, timeouts and security headers.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import parse_qs, urlencode

from ..errors import FashionEdgeError
from ..web.server import FIRST_DAY, LAST_DAY, Handler, WebServer
from .report import ALL, StoreFigures, chain_figures, chain_total, period

log = logging.getLogger(__name__)

STATEMENT_TIMEOUT_MS = 30_000  # one page's queries at most; the collector's own connection is apart


class DatabaseUnavailable(Exception):
    """The database cannot be reached or read now (the page answers 503)."""


@dataclass
class ChainView:
    """What the chain view reads: the collector's database (its DSN and password) and the default period."""

    dsn: str
    password: str | None = None
    connect_timeout_s: int = 5
    period_days: int = 7

    def period(self, since: str | None, until: str | None) -> tuple[datetime, datetime]:
        for name, text in (("since", since), ("until", until)):
            if text is not None:  # checked first: 0001-01-01 minus a week is no date at all
                try:
                    day = date.fromisoformat(text)
                except ValueError:
                    raise FashionEdgeError(f"{text!r} is not a day (YYYY-MM-DD)", field=name) from None
                if not FIRST_DAY + timedelta(days=366) <= day <= LAST_DAY:
                    raise FashionEdgeError(f"must be between {FIRST_DAY + timedelta(days=366)} and {LAST_DAY}",
                                           field=name)
        return period(since, until, days=self.period_days, names=("since", "until"))

    def figures(self, start: datetime, end: datetime) -> tuple[dict[str, StoreFigures], StoreFigures]:
        """(per store, chain-wide) for [start, end); ``DatabaseUnavailable`` when it cannot be read."""
        import psycopg

        kwargs = {"password": self.password} if self.password is not None else {}
        try:
            with psycopg.connect(self.dsn, connect_timeout=self.connect_timeout_s, autocommit=True,
                                 application_name="fashion-edge-chain-view",
                                 options=f"-c default_transaction_read_only=on "
                                         f"-c statement_timeout={STATEMENT_TIMEOUT_MS}", **kwargs) as conn:
                stores = chain_figures(conn, start, end)
        except psycopg.Error as exc:
            raise DatabaseUnavailable(" ".join(str(exc).split()) or type(exc).__name__) from None
        except FashionEdgeError as exc:  # no chain tables (yet)
            raise DatabaseUnavailable(str(exc)) from None
        return stores, chain_total(stores)


def figures_json(view_start: datetime, view_end: datetime, stores: dict[str, StoreFigures],
                 total: StoreFigures) -> dict:
    return {"since": view_start.date().isoformat(), "until": view_end.date().isoformat(),
            "until_excluded": True, "time_zone": "UTC",
            "stores": [s.as_dict() for s in stores.values()], "chain": total.as_dict()}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _bar(fraction: float | None, colour: str) -> str:
    width = 0.0 if fraction is None else max(0.0, min(1.0, fraction)) * 100
    return f'<span class="bar"><span style="width:{width:.1f}%;background:{colour}"></span></span>'


_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em;margin:0 0 .3em}
nav a{margin-right:1em}
table{border-collapse:collapse;margin-top:1em}
th,td{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
th{background:#f4f4f4}
td.site,th.site,td.garments{text-align:left}
tr.all td{font-weight:bold;border-top:2px solid #888}
.bar{display:inline-block;width:60px;height:.7em;background:#eee;margin-left:.4em;vertical-align:middle}
.bar span{display:block;height:100%}
.note{color:#666;font-size:.9em;margin-top:1em}
"""


def render_page(start: datetime, end: datetime, stores: dict[str, StoreFigures], total: StoreFigures,
                period_days: int) -> bytes:
    """The chain view as one HTML page (no script: the figures are in the page, the period in links)."""
    esc = html.escape
    last_day = (end - timedelta(days=1)).date()
    span_days = (end - start).days

    def link(shift_days: int) -> str:
        return "?" + urlencode({"since": (start + timedelta(days=shift_days)).date().isoformat(),
                                "until": (end + timedelta(days=shift_days)).date().isoformat()})

    rules = sorted({r for s in [*stores.values(), total] for r in s.alerts})
    most = max((s.customers for s in stores.values()), default=0)
    head = ("<tr><th class=site>store</th><th>cameras</th><th>customers</th><th>dress share</th>"
            "<th>suit share</th>" + "".join(f"<th>alerts {esc(r)}</th>" for r in rules)
            + "<th>alerts</th><th>dwell mean</th><th class=site>top garments</th></tr>")
    rows = []
    for s in [*stores.values(), total]:
        top = sorted(s.garments.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        customers_bar = _bar(s.customers / most if most else None, "#4c72b0") if s.site != ALL else ""
        rows.append(
            f'<tr class="{"all" if s.site == ALL else "store"}" data-site="{esc(s.site)}">'
            f"<td class=site>{esc('all stores' if s.site == ALL else s.site)}</td><td>{s.cameras}</td>"
            f'<td data-figure="customers">{s.customers}{customers_bar}</td>'
            f'<td data-figure="dress_share">{_pct(s.dress_share)}{_bar(s.dress_share, "#c44e52")}</td>'
            f'<td data-figure="suit_share">{_pct(s.suit_share)}{_bar(s.suit_share, "#55a868")}</td>'
            + "".join(f'<td data-figure="alerts_{esc(r)}">{s.alerts.get(r, 0)}</td>' for r in rules)
            + f'<td data-figure="alerts">{sum(s.alerts.values())}</td>'
            f"<td>{'-' if s.dwell_mean_s is None else f'{s.dwell_mean_s:.1f} s'}</td>"
            f"<td class=garments>{esc(', '.join(f'{k} {v}' for k, v in top)) or '-'}</td></tr>")
    body = (f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>" if stores
            else "<p>No windows or alerts in this period.</p>")
    query = "?" + urlencode({"since": start.date().isoformat(), "until": end.date().isoformat()})
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>fashion-edge: chain view</title><style>{_STYLE}</style></head><body>
<h1>Chain view: {len(stores)} store(s), {start.date().isoformat()} to {last_day.isoformat()} (UTC)</h1>
<nav><a href="{esc(link(-span_days))}">&larr; {span_days} days before</a>
<a href="{esc(link(span_days))}">{span_days} days after &rarr;</a>
<a href="/">last {period_days} days</a>
<a href="/api/chain{esc(query)}">JSON</a></nav>
{body}
<p class=note>Customers: arrivals counted in the stores' analytics windows that start in the period.
Dress / suit share: customers the dress / suit rule's garment test accepted, over customers.
Alerts: raised in the period, per rule. Dwell: customer-weighted mean of the windows' mean dwell.
The same figures as <code>fashion-edge report --db</code> (docs/chain.md).</p>
</body></html>
"""
    return page.encode()


class ChainHandler(Handler):
    """The store page's handler (Host check, auth, limits) with the chain view's routes."""

    def route(self, url) -> None:
        view: ChainView = self.server.state
        if url.path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
            return
        as_json = url.path == "/api/chain"
        if not as_json and url.path not in ("/", "/index.html"):
            self._send(404, b"not found\n", "text/plain")
            return
        query = parse_qs(url.query)
        try:
            start, end = view.period(query.get("since", [None])[0], query.get("until", [None])[0])
        except FashionEdgeError as exc:
            self._error(400, str(exc), as_json)
            return
        try:
            stores, total = view.figures(start, end)
        except DatabaseUnavailable as exc:
            log.warning("chain view: cannot read the database (%s)", exc)
            self._error(503, "the chain database cannot be read now (see the collector's log)", as_json)
            return
        if as_json:
            self._json(figures_json(start, end, stores, total))
        else:
            self._send(200, render_page(start, end, stores, total, view.period_days), "text/html; charset=utf-8")

    def _error(self, code: int, text: str, as_json: bool) -> None:
        if as_json:
            self._json({"error": text}, code)
        else:
            self._send(code, (text + "\n").encode(), "text/plain; charset=utf-8")


def start_chain_view(view: ChainView, host: str, port: int, username: str = "admin",
                     password: str | None = None) -> WebServer:
    """Serve the chain view on host:port (port 0: a free one, ``.port``) in a thread; ``.stop()`` ends it."""
    return WebServer(view, host, port, username, password, handler=ChainHandler, name="chain view").start()
