#!/usr/bin/env bash
# Start PostgreSQL, Redis and Mosquitto when they are not already running (DESIGN §3).
# Each check says in one line what it found; nothing here is destructive.
set -u

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if port_open 5432; then echo "PostgreSQL: running on 127.0.0.1:5432"
else
  echo "PostgreSQL: down — starting"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi

if port_open 6379; then echo "Redis: running on 127.0.0.1:6379"
else
  echo "Redis: down — starting"
  redis-server --daemonize yes --port 6379 --save "" --appendonly no || true
fi

if port_open 1883; then echo "Mosquitto: running on 127.0.0.1:1883"
else
  echo "Mosquitto: down — starting"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
fi

for i in $(seq 1 30); do
  if port_open 5432 && port_open 6379 && port_open 1883; then exit 0; fi
  sleep 1
done
port_open 5432 || echo "PostgreSQL is still not reachable at 127.0.0.1:5432"
port_open 6379 || echo "Redis is still not reachable at 127.0.0.1:6379"
port_open 1883 || echo "Mosquitto is still not reachable at 127.0.0.1:1883"
exit 1
