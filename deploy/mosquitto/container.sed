# config/mosquitto.conf as the compose stack's broker runs it (deploy/compose.yaml): the one
# production configuration, with only what the eclipse-mosquitto container changes. Applied
# at every start, so a change to config/mosquitto.conf reaches the container unchanged;
# tests/deploy/test_compose.py checks that each line below still matches.
#
# plain MQTT for the platform's containers on the compose network (never published to the
# host: devices use the TLS listener 8883)
s#^listener 1883 127\.0\.0\.1$#listener 1883#
# the image's plugin path
s#^plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security\.so$#plugin /usr/lib/mosquitto_dynamic_security.so#
# the image's data directory, owned by its mosquitto user (a named volume)
s#^persistence_location /var/lib/mosquitto/$#persistence_location /mosquitto/data/#
s#^plugin_opt_config_file /var/lib/mosquitto/dynamic-security\.json$#plugin_opt_config_file /mosquitto/data/dynamic-security.json#
