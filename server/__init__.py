"""CylinderWatch server: HTTP API, auth and roles, domain rules, storage, the `cylwatch` CLI."""
