"""The simulated city: guns, valves, handhelds and vehicles speaking the MQTT contract."""
