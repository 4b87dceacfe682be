-- Files people upload (photos of complaints and faults, notice attachments, article media):
-- the bytes live on disk under [uploads] dir at their SHA-256, never here as blobs; this row
-- records what they are and who sent them (server.kernel.uploads, docs/ARCHITECTURE.md §3).
-- Rows are never deleted by a retention job: a photo may be evidence.
CREATE TABLE uploads (
    id           bigserial PRIMARY KEY,
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    mime         text NOT NULL CHECK (mime IN ('image/jpeg', 'image/png', 'image/webp',
                                               'application/pdf', 'video/mp4')),
    size         bigint NOT NULL CHECK (size > 0),
    width        integer CHECK (width > 0),
    height       integer CHECK (height > 0),
    filename     text CHECK (length(filename) <= 200),
    purpose      text NOT NULL CHECK (purpose ~ '^[a-z_]{1,40}$'),
    uploaded_by  bigint REFERENCES users(id),
    uploaded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX uploads_sha256_idx ON uploads (sha256);
