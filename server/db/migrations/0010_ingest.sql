-- Ingest (DESIGN §5): what the MQTT workers need beyond the base schema.

-- Device time of the event that last set a cylinder's fill/location state. Buffered (late)
-- data is stored in the trajectory with its own ts but must not move a cylinder "back" to
-- where it was hours ago: a state change applies only when its ts is not older than this.
ALTER TABLE cylinders ADD COLUMN IF NOT EXISTS state_at timestamptz;

-- Device time of the last status (retained / last-will) message, so that a stale retained
-- "online" redelivered after a newer "offline" cannot flip the device back.
ALTER TABLE devices ADD COLUMN IF NOT EXISTS status_at timestamptz;

-- Mosquitto password hash ($7$ PBKDF2-SHA512) of the device's MQTT credential. The plain
-- password is shown to the installer once and never stored (DESIGN §7).
ALTER TABLE devices ADD COLUMN IF NOT EXISTS mqtt_password_hash text;

-- Valve inactivity is found by a range scan on last_seen_at (periodic rule); most cylinders
-- without a smart valve never report, hence the partial index.
CREATE INDEX IF NOT EXISTS cylinders_last_seen_idx ON cylinders (last_seen_at)
    WHERE last_seen_at IS NOT NULL;

-- Denied fill attempts per station per (local) day and reason (DOMAIN.md "Abnormal
-- behaviour": each denied attempt is counted per station per day). Maintained by ingest in
-- the same transaction that stores the refusal event, so a redelivered request is not
-- counted twice. Reports read it instead of scanning the events table.
CREATE TABLE IF NOT EXISTS fill_denials_daily (
    station_id  bigint NOT NULL REFERENCES sites(id),
    day         date NOT NULL,
    reason      text NOT NULL,
    count       integer NOT NULL DEFAULT 0,
    PRIMARY KEY (station_id, day, reason)
);
CREATE INDEX IF NOT EXISTS fill_denials_daily_day_idx ON fill_denials_daily (day);

-- When each periodic rule last ran: the valve-offline rule scans the window of last_seen_at
-- that crossed the threshold since the previous run, so a worker that was down for an hour
-- catches up instead of missing the valves that fell silent meanwhile.
CREATE TABLE IF NOT EXISTS ingest_housekeeping (
    name        text PRIMARY KEY,
    last_run_at timestamptz NOT NULL
);

-- Dead letters are browsed by admins by topic and time.
CREATE INDEX IF NOT EXISTS dead_letters_topic_idx ON dead_letters (topic, received_at);

-- Device time of a vehicle's latest stored position (devices.lat/lon). Kept apart from
-- last_seen_at (any message) so a late position never overwrites a newer one.
ALTER TABLE devices ADD COLUMN IF NOT EXISTS position_at timestamptz;
