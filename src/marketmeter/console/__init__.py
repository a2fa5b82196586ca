"""The seller console at `/console`: server-rendered pages over the same domain functions
as the CLI and the admin API, signed in with the admin token."""
