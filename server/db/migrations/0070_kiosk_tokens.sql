-- Kiosk tokens of the command-centre walls (docs/SECURITY.md "Sessions and credentials").
-- A token used to be an HMAC of the account id: one per account, never expiring, revocable
-- only all at once. Now each token is a row: it expires, it is listed, and it is revoked
-- one by one. Only a hash of the token's secret is stored (like api_keys).
CREATE TABLE kiosk_tokens (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id),
    note        text NOT NULL DEFAULT '',
    secret_hash text NOT NULL,
    issued_by   bigint REFERENCES users(id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    last_used_at timestamptz,
    revoked_at  timestamptz,
    CHECK (expires_at > created_at)
);
CREATE INDEX kiosk_tokens_user ON kiosk_tokens (user_id);

-- The HMAC key of the old tokens: nothing reads it any more (every old token is void).
DELETE FROM install_secrets WHERE name = 'kiosk_token_key';
