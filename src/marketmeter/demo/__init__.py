"""The demo `make run` serves: the bundled catalog and the snippet printed at start-up."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

SELLER_KEY = ("AKIADEMOSELLER000001", "demo-seller-secret-key-000000000000000001")
BUYER_KEY = ("AKIADEMOBUYER0000001", "demo-buyer-secret-key-0000000000000000001")
SAAS_PRODUCT = "demosaas000000000000000001"
AMI_PRODUCT = "demoami0000000000000000001"
BUYER_ACCOUNT = "444455556666"


def demo_catalog() -> Any:
    return yaml.safe_load(resources.files(__package__).joinpath("catalog.yaml").read_text())


def banner(endpoint: str, registration_token: str, database_url: str) -> str:
    return f"""
marketmeter demo — the AWS Marketplace Metering Service on {endpoint}

Seller  (BatchMeterUsage, ResolveCustomer): {SELLER_KEY[0]} / {SELLER_KEY[1]}
Buyer   (MeterUsage, RegisterUsage):        {BUYER_KEY[0]} / {BUYER_KEY[1]}
Products: {SAAS_PRODUCT} (SaaS), {AMI_PRODUCT} (AMI), democontainer000000000001 (container)
A registration token for buyer {BUYER_ACCOUNT} on {SAAS_PRODUCT}:
{registration_token}

Paste into Python (pip install boto3):

import boto3, datetime
seller = boto3.client("meteringmarketplace", endpoint_url="{endpoint}", region_name="us-east-1",
    aws_access_key_id="{SELLER_KEY[0]}", aws_secret_access_key="{SELLER_KEY[1]}")
print(seller.resolve_customer(RegistrationToken="{registration_token}"))
now = datetime.datetime.now(datetime.timezone.utc)
print(seller.batch_meter_usage(ProductCode="{SAAS_PRODUCT}", UsageRecords=[
    {{"Timestamp": now, "CustomerAWSAccountId": "{BUYER_ACCOUNT}", "Dimension": "users",
     "QuantityAsDecimal": "3.5"}}])["Results"])
buyer = boto3.client("meteringmarketplace", endpoint_url="{endpoint}", region_name="us-east-1",
    aws_access_key_id="{BUYER_KEY[0]}", aws_secret_access_key="{BUYER_KEY[1]}")
print(buyer.meter_usage(ProductCode="{AMI_PRODUCT}", Timestamp=now,
    UsageDimension="vcpu_hours", UsageQuantity=4))

Read back what was stored:  marketmeter records export --database {database_url}
Totals per customer:  marketmeter usage report --database {database_url} \\
                          --product {SAAS_PRODUCT}
The admin API (TOKEN: printed above on a first start):
    curl -H "Authorization: Bearer $TOKEN" {endpoint}/admin/v1/records
"""
