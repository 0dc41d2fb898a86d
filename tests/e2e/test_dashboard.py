"""The ops dashboard in headless Chromium (Debian's package) against a real analytics-svc.

The service runs under uvicorn on a free port (Chromium needs real HTTP), fed with
generated events through Kafka; the page's DOM is dumped and every number it shows is
compared with the API's JSON; a screenshot is saved under .local/e2e/ (gitignored).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from analytics_svc.main import create_app
from analytics_svc.settings import AnalyticsSettings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import CreateDatabase
from tests.integration.analytics_svc.generate import T0, generate, publish
from tests.support import KAFKA_BOOTSTRAP, REDIS_URL, eventually

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".local" / "e2e"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FROM, TO = T0.date(), (T0 + timedelta(days=126)).date()


class Elements(HTMLParser):
    """Every element with a data-* attribute, with its attributes and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = {"tag": tag, "attrs": dict(attrs), "text": ""}
        if any(name.startswith("data-") or name == "id" for name, _ in attrs):
            self.found.append(node)
        if tag not in ("input", "br", "meta", "img", "hr", "link"):
            self._open.append(node)

    def handle_endtag(self, tag: str) -> None:
        if any(node["tag"] == tag for node in self._open):
            while self._open.pop()["tag"] != tag:
                pass

    def handle_data(self, data: str) -> None:
        for node in self._open:
            node["text"] += data

    def select(self, **wanted: str | None) -> list[dict[str, Any]]:
        return [
            n
            for n in self.found
            if all(
                (name.replace("_", "-") in n["attrs"])
                if value is None
                else n["attrs"].get(name.replace("_", "-")) == value
                for name, value in wanted.items()
            )
        ]


def shown(kind: str, value: float | None) -> str:
    """The page's formatting rules (fmt in dashboard.html), for the API's numbers."""
    if value is None:
        return "–"
    if kind == "count":
        return f"{round(value):,}"
    if kind == "percent":
        return f"{value * 100:.1f} %"
    if kind == "money":
        return f"{value / 100:.2f}"
    if kind == "nps":
        return f"{value:.1f}"
    return f"{value:.2f}"


def same(dom_value: str, api_value: float | None) -> bool:
    if api_value is None:
        return dom_value == ""
    return abs(float(dom_value) - float(api_value)) <= 1e-9 * max(1.0, abs(float(api_value)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def settings(create_database: CreateDatabase, topic_prefix: str) -> AnalyticsSettings:
    return AnalyticsSettings(
        database_url=await create_database("analytics_e2e"),
        topic_prefix=topic_prefix,
        kafka_bootstrap=KAFKA_BOOTSTRAP,
        redis_url=REDIS_URL,
        run_jobs=False,
        http_port=free_port(),
    )


@pytest.fixture
def server(settings: AnalyticsSettings) -> Iterator[str]:
    """analytics-svc under uvicorn in a thread of its own (its own event loop)."""
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.http_port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not instance.started:
        assert thread.is_alive(), "analytics-svc did not start"
        assert time.monotonic() < deadline, "analytics-svc did not start within 60 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{settings.http_port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=30)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--virtual-time-budget=10000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_dashboard_shows_the_api_numbers(
    server: str, settings: AnalyticsSettings, topic_prefix: str
) -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is missing: run `infra/infra.sh ensure-chromium`")
    history = generate(seed=17, members=120)
    await publish(history.events, topic_prefix)
    engine = create_async_engine(settings.database_url)
    try:

        async def consumed() -> bool:
            async with engine.connect() as conn:
                n = await conn.scalar(text("SELECT count(*) FROM inbox"))
            return int(n or 0) >= len({e.event_id for e in history.events})

        await eventually(consumed, within=60, what="the generated events applied")
    finally:
        await engine.dispose()

    token = create_app(settings).state.token_verifier.issue("e2e", ["ops"], ttl=timedelta(hours=1))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server, headers=headers, timeout=120) as client:
        at = f"{TO.isoformat()}T00:00:00Z"
        for job in ("rfm", "clv", "churn"):  # as of the end of the generated history
            ran = await client.post(f"/v1/ops/jobs/{job}/run", params={"at": at})
            assert ran.status_code == 200, ran.text
        summary = (await client.get("/v1/kpis/summary", params={"at": at})).json()
        series = (
            await client.get(
                "/v1/kpis",
                params={"from": f"{FROM}T00:00:00Z", "to": at, "granularity": "week"},
            )
        ).json()
        tiers = (await client.get("/v1/tiers/distribution", params={"at": at})).json()
        rfm = (await client.get("/v1/rfm/segments")).json()
        clv = (await client.get("/v1/clv/distribution")).json()
        model = (await client.get("/v1/clv/model")).json()
        uplift = (
            await client.get(
                f"/v1/campaigns/{history.campaign_id}/uplift", params={"window_days": 14}
            )
        ).json()

    query = urlencode(
        {"token": token, "from": FROM.isoformat(), "to": TO.isoformat(), "granularity": "week"}
    )
    url = f"{server}/dashboard?{query}"
    dumped = await asyncio.to_thread(chromium, "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    page = Elements()
    page.feed(dumped.stdout)

    status = page.select(id="status")[0]
    assert status["attrs"]["data-state"] == "ready", status["text"]

    # Summary cards: the raw value and the text shown.
    cards = {n["attrs"]["data-kpi"]: n for n in page.select(data_kpi=None, data_format=None)}
    for key in (
        "members_at_end",
        "active_members",
        "activity_rate",
        "repurchase_rate",
        "average_order_value",
        "purchase_frequency",
        "member_share_of_sales",
        "redemption_rate",
        "points_liability_minor",
        "nps",
        "churn_at_risk",
    ):
        node = cards[key]
        assert same(node["attrs"]["data-value"], summary[key]), key
        assert shown(node["attrs"]["data-format"], summary[key]) in node["text"], key
    assert summary["members_at_end"] > 50

    # Trend charts: one dot per defined bucket value, in order.
    for key in (
        "members_at_end",
        "activity_rate",
        "revenue_minor",
        "average_order_value",
        "nps",
        "points_liability_minor",
        "redemption_rate",
    ):
        chart_dots = _children_of_chart(page, key)
        expected = [(b["start"], b[key]) for b in series["buckets"] if b[key] is not None]
        assert [(d["attrs"]["data-bucket"]) for d in chart_dots] == [s for s, _ in expected], key
        for dot, (_, value) in zip(chart_dots, expected, strict=True):
            assert same(dot["attrs"]["data-value"], value), key

    # Tier distribution table.
    rows = [n for n in page.select(data_tier=None, data_members=None) if n["tag"] == "tr"]
    assert {r["attrs"]["data-tier"]: int(r["attrs"]["data-members"]) for r in rows} == {
        t["tier"]: t["members"] for t in tiers["tiers"]
    }
    for r in rows:
        tier = next(t for t in tiers["tiers"] if t["tier"] == r["attrs"]["data-tier"])
        assert shown("percent", tier["share"]) in r["text"]

    # RFM grid and segment counts.
    for cell in page.select(data_r=None, data_fm=None):
        r_score, fm = int(cell["attrs"]["data-r"]), int(cell["attrs"]["data-fm"])
        members = rfm["grid"]["members"][r_score - 1][fm - 1]
        assert int(cell["attrs"]["data-members"]) == members
        assert cell["text"].startswith(shown("count", members))
    segments = {
        n["attrs"]["data-segment"]: int(n["attrs"]["data-members"])
        for n in page.select(data_segment=None)
    }
    assert segments == {s["segment"]: s["members"] for s in rfm["segments"]}
    assert rfm["members"] > 0

    # CLV: summary cards, histogram bars, model parameters.
    for key, api_key in (
        ("clv_members", "members"),
        ("clv_mean_predicted", "mean_predicted"),
        ("clv_total_predicted", "total_predicted"),
        ("clv_total_historical", "total_historical"),
    ):
        assert same(cards[key]["attrs"]["data-value"], clv[api_key]), key
    bars = [n for n in page.select(data_low=None, data_members=None) if n["tag"] == "rect"]
    assert [int(b["attrs"]["data-members"]) for b in bars] == [b["members"] for b in clv["bins"]]
    params = {
        (n["attrs"]["data-model"], n["attrs"]["data-param"]): n["attrs"]["data-value"]
        for n in page.select(data_model=None)
    }
    for name, value in model["bgnbd"]["params"].items():
        assert same(params[("BG/NBD", name)], value)
    assert same(params[("BG/NBD", "log_likelihood")], model["bgnbd"]["log_likelihood"])

    # Campaign uplift row.
    (row,) = page.select(data_campaign=str(history.campaign_id))
    assert same(row["attrs"]["data-difference"], uplift["difference"])
    assert same(row["attrs"]["data-low"], uplift["interval"]["low"])
    assert same(row["attrs"]["data-high"], uplift["interval"]["high"])
    assert shown("percent", uplift["difference"]) in row["text"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    shot = await asyncio.to_thread(
        chromium, f"--screenshot={screenshot}", "--window-size=1400,2000", url
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 20_000


def _children_of_chart(page: Elements, key: str) -> list[dict[str, Any]]:
    """The dots drawn inside the chart of one KPI (they follow its svg in document order)."""
    found = page.found
    start = next(i for i, n in enumerate(found) if n["attrs"].get("id") == f"chart-{key}")
    dots = []
    for node in found[start + 1 :]:
        if node["tag"] == "svg" or node["attrs"].get("id", "").startswith("chart-"):
            break
        if node["tag"] == "circle":
            dots.append(node)
    return dots
