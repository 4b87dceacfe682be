"""Storage: connection pool, migrations and the SQL the platform runs."""
