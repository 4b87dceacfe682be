-- A company's notice or promotion on the public QR page (/q/{code}, docs/ARCHITECTURE.md §8):
-- a short text and an optional link the company admin sets (PATCH /api/v1/companies/{id}).
-- The page shows the text as text, never as HTML, and links only to http(s) addresses; the
-- checks below repeat the API's so that no other writer stores a longer text or a
-- `javascript:` link.
ALTER TABLE companies
    ADD COLUMN IF NOT EXISTS notice_text text
        CHECK (notice_text IS NULL OR length(notice_text) BETWEEN 1 AND 200),
    ADD COLUMN IF NOT EXISTS notice_url text
        CHECK (notice_url IS NULL
               OR (length(notice_url) <= 300 AND notice_url ~ '^https?://[^[:space:]<>"]+$'));
