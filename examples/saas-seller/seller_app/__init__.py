"""An AWS Marketplace SaaS seller's back end: the fulfillment URL, a usage log and the
hourly metering job."""
