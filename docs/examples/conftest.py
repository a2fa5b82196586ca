"""A marketmeter server for the examples of docs/client.md and docs/agent.md: a catalog of
a seller, a buyer and four products, applied to a throwaway SQLite file and served on a
free port."""

import socket
import subprocess
import time
import urllib.request

import pytest

SELLER = ("AKIAEXAMPLESELLER001", "example-seller-secret-0000000000000001")
BUYER = ("AKIAEXAMPLEBUYER0001", "example-buyer-secret-00000000000000001")
CATALOG = f"""
accounts:
  - account_id: "111122223333"
    access_keys: [{{access_key_id: {SELLER[0]}, secret_access_key: {SELLER[1]}}}]
  - account_id: "444455556666"
    access_keys: [{{access_key_id: {BUYER[0]}, secret_access_key: {BUYER[1]}}}]
products:
  - {{product_code: saas0000000000000000000001, seller_account_id: "111122223333",
      type: saas, dimensions: [users, storage_gb]}}
  - {{product_code: ami00000000000000000000001, seller_account_id: "111122223333",
      type: ami, dimensions: [vcpu_hours]}}
  - {{product_code: container000000000000000001, seller_account_id: "111122223333",
      type: container, dimensions: [tasks]}}
  - {{product_code: contract000000000000000001, seller_account_id: "111122223333",
      type: saas, dimensions: [seats], pricing: contract}}
subscriptions:
  - {{product_code: ami00000000000000000000001, customer_aws_account_id: "444455556666"}}
  - {{product_code: container000000000000000001, customer_aws_account_id: "444455556666"}}
"""


def marketmeter(*args, database):
    return subprocess.run(
        ["marketmeter", *args, "--database", database], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def metering_server(tmp_path):
    """(database URL, endpoint URL) of a running marketmeter with the catalog."""
    database = f"sqlite:///{tmp_path / 'marketplace.db'}"
    (tmp_path / "catalog.yaml").write_text(CATALOG)
    marketmeter("catalog", "apply", str(tmp_path / "catalog.yaml"), database=database)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = ["marketmeter", "serve", "--database", database, "--port", str(port)]
    server = subprocess.Popen([*command, "--log-level", "warning"])
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint + "/health")
            break
        except OSError:
            time.sleep(0.1)
    yield database, endpoint
    server.terminate()
    server.wait()
