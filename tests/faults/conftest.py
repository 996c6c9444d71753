"""The PostgreSQL fixtures of the store tests, for the failover test."""

from tests.store.conftest import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]
