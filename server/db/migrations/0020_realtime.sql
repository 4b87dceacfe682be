-- Realtime (DESIGN §6, §8 /m): Web Push subscriptions and the platform's VAPID key pair.

-- The platform's VAPID key pair (RFC 8292), generated on first use by whichever server
-- process needs it first (INSERT ... ON CONFLICT DO NOTHING, then read back), so every
-- process signs with the same key and browsers' subscriptions stay valid across restarts.
CREATE TABLE IF NOT EXISTS push_vapid_keys (
    id              smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    private_pem     text NOT NULL,            -- PKCS#8 PEM of the P-256 private key
    public_key      text NOT NULL,            -- uncompressed point, base64url: the applicationServerKey
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- One browser PushSubscription (endpoint + keys) per row; a user may have several devices.
-- A subscription the push service reports gone (404/410) is deleted by the sender.
CREATE TABLE IF NOT EXISTS push_subscriptions (
    id              bigserial PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endpoint        text NOT NULL UNIQUE,
    p256dh          text NOT NULL,            -- the browser's ECDH public key, base64url
    auth            text NOT NULL,            -- the 16-byte auth secret, base64url
    user_agent      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_sent_at    timestamptz,
    failures        integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS push_subscriptions_user_idx ON push_subscriptions (user_id);
