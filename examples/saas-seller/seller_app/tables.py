"""The app's DynamoDB tables, for a new environment (or a test's moto)."""

from __future__ import annotations

from typing import Any

from seller_app.fulfillment import customers_table_name
from seller_app.usage import usage_table_name


def create_tables(dynamodb: Any) -> None:
    """Create the customers and usage tables (on demand capacity)."""
    account = {"AttributeName": "customer_aws_account_id", "AttributeType": "S"}
    dynamodb.create_table(
        TableName=customers_table_name(),
        KeySchema=[{"AttributeName": "customer_aws_account_id", "KeyType": "HASH"}],
        AttributeDefinitions=[account],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.create_table(
        TableName=usage_table_name(),
        KeySchema=[
            {"AttributeName": "customer_aws_account_id", "KeyType": "HASH"},
            {"AttributeName": "event_id", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[account, {"AttributeName": "event_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
