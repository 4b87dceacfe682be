-- Messages (系统消息/发件箱) and notices that require sign-off (通知/文件)
-- (server.domain.messages, server.db.messages; docs/API.md "Messages and notices").
--
-- A message or notice is fanned out at send time, in the sending transaction: one row per
-- recipient user, with its read or signature time. The audience the sender chose (users,
-- companies, districts) is kept as written, for the outbox; the recipient rows are who it
-- reached that day — a user joining a company later does not receive old circulars. The
-- read and signed counts move in the statement that sets a recipient's read_at / signed_at,
-- so the outbox shows "read by n of m" without counting the rows.

CREATE TABLE notices (
    id               bigserial PRIMARY KEY,
    sender_id        bigint NOT NULL REFERENCES users(id),
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body             text NOT NULL CHECK (length(body) <= 20000),
    audience         jsonb NOT NULL,
    deadline         timestamptz,                 -- sign by; the reminder round passes after it
    recipient_count  integer NOT NULL CHECK (recipient_count > 0),
    signed_count     integer NOT NULL DEFAULT 0,  -- moves with each first signature
    reminded_at      timestamptz,                 -- the reminder round has done this notice
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notices_sender_idx ON notices (sender_id, id DESC);
-- the reminder round: notices past their deadline not yet reminded
CREATE INDEX notices_due_idx ON notices (deadline)
    WHERE reminded_at IS NULL AND deadline IS NOT NULL;

CREATE TABLE notice_recipients (
    notice_id    bigint NOT NULL REFERENCES notices(id) ON DELETE CASCADE,
    user_id      bigint NOT NULL REFERENCES users(id),
    signed_at    timestamptz,
    reminded_at  timestamptz,
    PRIMARY KEY (notice_id, user_id)
);
CREATE INDEX notice_recipients_user_idx ON notice_recipients (user_id, notice_id DESC);
-- the header's count of notices awaiting one's signature
CREATE INDEX notice_recipients_unsigned_idx ON notice_recipients (user_id) WHERE signed_at IS NULL;

CREATE TABLE notice_attachments (
    notice_id  bigint NOT NULL REFERENCES notices(id) ON DELETE CASCADE,
    upload_id  bigint NOT NULL REFERENCES uploads(id),
    position   smallint NOT NULL CHECK (position >= 0),
    PRIMARY KEY (notice_id, upload_id)
);

CREATE TABLE messages (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('message', 'system')),
    sender_id        bigint REFERENCES users(id),  -- none: the platform wrote it
    subject          text NOT NULL CHECK (length(subject) BETWEEN 1 AND 200),
    body             text NOT NULL CHECK (length(body) <= 10000),
    audience         jsonb NOT NULL DEFAULT '{}',
    reply_to         bigint REFERENCES messages(id),
    thread_id        bigint REFERENCES messages(id), -- the first message of the thread (none: it is one)
    notice_id        bigint REFERENCES notices(id),  -- a reminder's notice
    recipient_count  integer NOT NULL CHECK (recipient_count > 0),
    read_count       integer NOT NULL DEFAULT 0,  -- moves with each first read
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'system') = (sender_id IS NULL)),
    CHECK ((reply_to IS NULL) = (thread_id IS NULL))
);
CREATE INDEX messages_sender_idx ON messages (sender_id, id DESC) WHERE sender_id IS NOT NULL;
CREATE INDEX messages_thread_idx ON messages (thread_id, id) WHERE thread_id IS NOT NULL;

CREATE TABLE message_recipients (
    message_id  bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users(id),
    read_at     timestamptz,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX message_recipients_user_idx ON message_recipients (user_id, message_id DESC);
-- the unread count in every page's header: an index of the unread rows only, by user
CREATE INDEX message_recipients_unread_idx ON message_recipients (user_id) WHERE read_at IS NULL;

CREATE TABLE message_attachments (
    message_id  bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    upload_id   bigint NOT NULL REFERENCES uploads(id),
    position    smallint NOT NULL CHECK (position >= 0),
    PRIMARY KEY (message_id, upload_id)
);
