#!/bin/sh
# Entry point of the compose stack's broker (deploy/compose.yaml, eclipse-mosquitto image):
# the production configuration rewritten for the container, the dynamic-security file made
# on the first start with the platform's admin client (docs/SECURITY.md "Setting up a
# broker", step 2), then Mosquitto itself, dropping root for its own user.
set -eu
sed -f /cylwatch/container.sed /cylwatch/mosquitto.conf > /mosquitto/config/cylwatch.conf
if [ ! -f /mosquitto/data/dynamic-security.json ]; then
    : "${CYLWATCH_MQTT_ADMIN_PASSWORD:?the broker's admin password is not set}"
    mosquitto_ctrl dynsec init /mosquitto/data/dynamic-security.json cylwatch-admin \
        "$CYLWATCH_MQTT_ADMIN_PASSWORD"
fi
chown -R mosquitto:mosquitto /mosquitto/data
chmod 600 /mosquitto/data/dynamic-security.json
exec /usr/sbin/mosquitto -c /mosquitto/config/cylwatch.conf
