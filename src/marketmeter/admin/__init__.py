"""The admin API (`/admin/v1/`, JSON behind a bearer token): the catalog, subscriptions,
records, usage reports, notifications and test controls — thin routes over the domain
(`routes`), their types (`schemas`), the error shape (`errors`), the OpenAPI document
generated from both (`openapi`), the ASGI app (`app`)."""
