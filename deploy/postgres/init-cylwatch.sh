#!/bin/sh
# First start of the compose stack's database only (docker-entrypoint-initdb.d runs it once,
# on an empty data directory): the roles of docs/SECURITY.md "Database roles" —
#   cylwatch_owner   owns the tables, runs `cylwatch migrate` (the `migrate` service)
#   cylwatch_app     NOLOGIN: the privileges the server needs, granted by every migrate run
#   cylwatch_server  LOGIN, a member of cylwatch_app: the server and ingest connect with it
# and TimescaleDB in the platform's database (creating the extension needs a superuser).
# The passwords come from the stack's environment file, never from this repository.
set -eu
: "${CYLWATCH_DB_OWNER_PASSWORD:?not set}"
: "${CYLWATCH_DB_SERVER_PASSWORD:?not set}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v owner_pw="$CYLWATCH_DB_OWNER_PASSWORD" -v server_pw="$CYLWATCH_DB_SERVER_PASSWORD" <<'SQL'
CREATE ROLE cylwatch_owner LOGIN PASSWORD :'owner_pw';
CREATE DATABASE cylwatch OWNER cylwatch_owner;
CREATE ROLE cylwatch_app NOLOGIN;
CREATE ROLE cylwatch_server LOGIN PASSWORD :'server_pw' IN ROLE cylwatch_app;
\connect cylwatch
CREATE EXTENSION IF NOT EXISTS timescaledb;
SQL
