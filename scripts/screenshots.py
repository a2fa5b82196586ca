"""`make screenshots`: the console's pages, photographed in headless Chromium (Debian's
`chromium`, driven by Playwright) from a fresh demo database, into docs/console/ — so the
pictures in docs/console.md show what the console looks like today.

It serves the demo catalog (`serve --demo --test-controls`) on a free port, fills a day of
usage with boto3 (batches sent at several moments of the last hour by the test clock, so the
per-minute chart has something to show), adds a webhook and an event target that never
answers (failed deliveries), subscribes a buyer through the console's own form, and takes
one picture per page at 1280 px, and the overview at a phone's width.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "console"
TOKEN = "screenshots-admin-token-000001"
SAAS = "demosaas000000000000000001"
SELLER_KEY = ("AKIADEMOSELLER000001", "demo-seller-secret-key-000000000000000001")
BUYERS = ["444455556666", "777788889999", "210987654321", "555512340001", "600011112222"]
DIMENSIONS = {"users": (5, 40), "storage_gb": (20, 120), "api_calls": (60, 400)}
TEAMS = ["analytics", "platform", "search"]
STEPS = 6
"""Moments of the last hour at which batches are sent (the per-minute chart)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Fulfillment(BaseHTTPRequestHandler):
    """The seller's registration page: takes the token, sends the buyer on (302)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path.startswith("/register"):
            self.send_response(302)
            self.send_header("Location", "https://seller.example/welcome?account=new")
        else:  # SNS messages
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # a SubscribeURL visited
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Fulfillment)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@contextmanager
def demo_server(directory: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "marketmeter", "serve", "--demo", "--test-controls"),
            *("--database", f"sqlite:///{directory / 'demo.db'}", "--port", str(port)),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "MARKETMETER_ADMIN_TOKEN": TOKEN},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1):
                    break
            except OSError as exc:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.close()
                    raise SystemExit(
                        "the server did not start:\n" + (directory / "server.log").read_text()
                    ) from exc
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def seed(url: str, fulfillment: str) -> None:
    admin = httpx.Client(
        base_url=url + "/admin/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
    )
    product = {
        "product_code": SAAS,
        "seller_account_id": "111122223333",
        "type": "saas",
        "dimensions": list(DIMENSIONS),
        "fulfillment_url": fulfillment + "/register",
        "prices": {
            d: {"price_per_unit": price, "currency": "USD"}
            for d, price in (("users", "2.50"), ("storage_gb", "0.02"), ("api_calls", "0.0001"))
        },
    }
    _ok(admin.post("/catalog", json={"products": [product]}))
    _ok(admin.post("/webhooks", json={"product_code": SAAS, "url": fulfillment + "/sns"}))
    _ok(admin.post("/event-targets", json={"url": "http://127.0.0.1:9/events"}))  # nobody there
    for account in BUYERS[2:]:
        body = {"customer_aws_account_id": account}
        _ok(admin.post(f"/products/{SAAS}/subscriptions", json=body))
    client = boto3.client(
        "meteringmarketplace",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=SELLER_KEY[0],
        aws_secret_access_key=SELLER_KEY[1],
    )
    rng = random.Random(7)
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    # Hours 1…22 back are sent at the moments of the last hour (each by the clock of then);
    # the current hour last, on the real clock.
    moments = [now - timedelta(minutes=55) + timedelta(minutes=10 * k) for k in range(STEPS)]
    for k, moment in enumerate([*moments, None]):
        if moment is None:
            _ok(admin.delete("/test-controls/clock"))
            hours = [0]
        else:
            _ok(admin.put("/test-controls/clock", json={"at": moment.isoformat()}))
            hours = [h for h in range(1, 23) if h % STEPS == k]
        time.sleep(1.2)  # every process follows the clock within a second
        records = []
        for back in hours:
            for account in BUYERS:
                for dimension, (low, high) in DIMENSIONS.items():
                    quantity = rng.randint(low, high)
                    team = rng.choice(TEAMS)
                    records.append(
                        {
                            "Timestamp": hour - timedelta(hours=back) + timedelta(minutes=1),
                            "CustomerAWSAccountId": account,
                            "Dimension": dimension,
                            "Quantity": quantity,
                            "UsageAllocations": [
                                {
                                    "AllocatedUsageQuantity": quantity,
                                    "Tags": [{"Key": "team", "Value": team}],
                                }
                            ],
                        }
                    )
        for i in range(0, len(records), 25):
            answer = client.batch_meter_usage(ProductCode=SAAS, UsageRecords=records[i : i + 25])
            refused = [r for r in answer["Results"] if r["Status"] != "Success"]
            if refused or answer["UnprocessedRecords"]:
                raise SystemExit(f"seeding failed: {refused or answer['UnprocessedRecords']}")
    time.sleep(2.5)  # the deliveries' first attempts


def _ok(answer: httpx.Response) -> None:
    if answer.status_code >= 300:
        raise SystemExit(f"{answer.request.method} {answer.request.url}: {answer.text}")


def shoot(url: str, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("needs Debian's chromium: scripts/install-system-packages installs it")
    out.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 800})

        def picture(name: str, *, full: bool = True) -> None:
            path = out / f"{name}.png"
            page.screenshot(path=str(path), full_page=full)
            taken.append(path)

        console = url + "/console"
        page.goto(console + "/sign-in")
        picture("sign-in", full=False)
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_url("**/console/")
        picture("overview")
        page.goto(console + "/products")
        picture("products")
        page.goto(f"{console}/products/{SAAS}")
        picture("product")
        page.goto(f"{console}/products/{SAAS}/customers/{BUYERS[0]}")
        picture("customer")
        page.goto(f"{console}/usage?product={SAAS}")
        picture("usage")
        page.goto(f"{console}/records?product={SAAS}&limit=12")
        picture("records")
        first = page.locator("table a").first.get_attribute("href")
        page.goto(url + str(first))
        picture("record")
        page.goto(console + "/deliveries")
        page.locator("details").first.evaluate("d => d.open = true")
        picture("deliveries")
        page.goto(console + "/test-controls")
        picture("test-controls")
        page.goto(f"{console}/products/{SAAS}")
        page.fill("#account", "999900001111")
        page.click("text=Subscribe >> nth=-1")
        page.wait_for_selector("#registration-token")
        picture("subscribed")
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        phone.context.add_cookies(page.context.cookies())
        phone.goto(console + "/")
        path = out / "overview-phone.png"
        phone.screenshot(path=str(path), full_page=False)
        taken.append(path)
        browser.close()
    return taken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where (default: docs/console)")
    out = parser.parse_args().out.resolve()
    with (
        tempfile.TemporaryDirectory(prefix="marketmeter-screenshots-") as tmp,
        receiver() as fulfillment,
        demo_server(Path(tmp)) as url,
    ):
        print("screenshots: filling a demo database…", flush=True)
        seed(url, fulfillment)
        print("screenshots: photographing the console…", flush=True)
        for path in shoot(url, out):
            print(f"  {path}", flush=True)


if __name__ == "__main__":
    main()
