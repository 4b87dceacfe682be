-- Articles (公益宣传, docs/API.md "Articles"; docs/ARCHITECTURE.md §8): safety knowledge,
-- news, announcements and laws the bureau publishes for households, on the public portal
-- (/portal) and, the latest of them, on the QR page. Editors (server.domain.articles) write
-- drafts and publish them; the public reads published ones only.
--
-- The body is plain text with the small markup of server.domain.articles, shown by the pages
-- as DOM nodes and never as HTML. One row is one language: a reader sees the articles of the
-- language they read. Media are uploads (migration 0130) attached to the article.

-- A link of an article (a video on another site, a related page): {url, label?}, http(s)
-- only, never embedded (the page shows it as a link). Checked here as well as in the API so
-- that no other writer stores a `javascript:` address.
CREATE FUNCTION article_links_ok(links jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_typeof(links) = 'array'
       AND jsonb_array_length(links) <= 5
       AND NOT EXISTS (
           SELECT 1 FROM jsonb_array_elements(links) AS l
            WHERE jsonb_typeof(l) IS DISTINCT FROM 'object'
               OR jsonb_typeof(l -> 'url') IS DISTINCT FROM 'string'
               OR NOT (l ->> 'url' ~ '^https?://[^[:space:]<>"]+$')
               OR length(l ->> 'url') > 500
               OR length(COALESCE(l ->> 'label', '')) > 100)
$$;

CREATE TABLE articles (
    id               bigserial PRIMARY KEY,
    category         text NOT NULL CHECK (category IN ('safety', 'news', 'announcement', 'law')),
    language         text NOT NULL CHECK (language IN ('zh-CN', 'en')),
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    summary          text CHECK (summary IS NULL OR length(summary) BETWEEN 1 AND 500),
    body             text NOT NULL DEFAULT '' CHECK (length(body) <= 20000),
    author           text CHECK (author IS NULL OR length(author) BETWEEN 1 AND 100),
    links            jsonb NOT NULL DEFAULT '[]' CHECK (article_links_ok(links)),
    state            text NOT NULL DEFAULT 'draft' CHECK (state IN ('draft', 'published')),
    -- the first publication; kept when an article is taken back to draft and published again
    published_at     timestamptz,
    cover_upload_id  bigint,
    created_by       bigint REFERENCES users(id),   -- NULL: the articles of this migration
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       bigint REFERENCES users(id),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT articles_published_check CHECK (state = 'draft' OR published_at IS NOT NULL)
);
-- the portal and the QR page: the newest published articles of a language (and category)
CREATE INDEX articles_public_idx ON articles (language, published_at DESC, id DESC)
    WHERE state = 'published';
-- the editors' list: the last edited first
CREATE INDEX articles_updated_idx ON articles (updated_at DESC, id DESC);

-- The pictures, clips (MP4) and documents (PDF) of an article, in the order they were added.
-- The upload's row stays when its article is deleted (migration 0130: never deleted).
CREATE TABLE article_media (
    article_id  bigint NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    upload_id   bigint NOT NULL REFERENCES uploads(id),
    position    integer NOT NULL CHECK (position >= 0),
    caption     text CHECK (caption IS NULL OR length(caption) BETWEEN 1 AND 200),
    added_by    bigint REFERENCES users(id),
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (article_id, upload_id)
);

-- the cover is one of the article's own media (a picture, checked by the API); removing that
-- medium leaves the article without a cover rather than refusing
ALTER TABLE articles
    ADD CONSTRAINT articles_cover_fkey FOREIGN KEY (id, cover_upload_id)
        REFERENCES article_media (article_id, upload_id) ON DELETE SET NULL (cover_upload_id);

-- The safety tips the QR page showed from config/safety_articles.json until now, published
-- in both languages so that the portal and the QR page are never empty on a new install.
-- The first tip is the newest (the QR page shows the latest first).
INSERT INTO articles (language, category, title, body, state, published_at)
SELECT v.language, 'safety', v.title, v.body, 'published', now() - make_interval(mins => v.ord)
  FROM (VALUES
    ('zh-CN', 0, '用气前的安全检查',
     '使用液化石油气钢瓶前，请确认钢瓶有清晰的充装标签和二维码，扫码可查看产权单位、检验日期和报废日期。检查角阀、减压阀和软管连接是否牢固，软管不应老化、龟裂，长度不宜超过2米。用肥皂水涂抹接口检查是否漏气，严禁用明火试漏。'),
    ('zh-CN', 1, '闻到燃气味怎么办',
     '立即关闭钢瓶角阀，打开门窗通风；不要开关任何电器、不要使用手机和明火；迅速撤离到室外安全地点后，拨打供气企业抢修电话或119报警。'),
    ('zh-CN', 2, '钢瓶的存放与使用',
     '钢瓶应直立使用，严禁卧放、倒置、加热、曝晒或摔砸。钢瓶应放在通风良好的地方，远离火源和热源，不得存放在地下室或密闭空间。严禁自行倒罐、排放残液。'),
    ('zh-CN', 3, '选择合法供气企业',
     '请从持有燃气经营许可证的企业购买液化石油气，认准带有智能角阀和追溯二维码的钢瓶。超过检验期限或已报废的钢瓶严禁充装和使用，发现“黑气瓶”可扫描钢瓶二维码投诉举报。'),
    ('en', 0, 'Check before you use gas',
     'Before use, make sure the cylinder carries a filling label and a QR code; scan it to see the owner, inspection and scrap dates. Check that the valve, regulator and hose are tight; a hose must not be aged or cracked. Test joints with soapy water — never with a flame.'),
    ('en', 1, 'If you smell gas',
     'Close the cylinder valve at once and open doors and windows. Do not switch any electrical device on or off, do not use a phone or a flame indoors. Leave, then call the gas company''s emergency line or 119.'),
    ('en', 2, 'Storing and using a cylinder',
     'Keep the cylinder upright; never lay it down, turn it over, heat it, leave it in the sun or drop it. Store it in a well-ventilated place away from flames and heat, never in a basement or closed room. Never decant gas or dump residue yourself.'),
    ('en', 3, 'Buy from licensed suppliers',
     'Buy LPG only from licensed gas companies and look for cylinders with a smart valve and a traceability QR code. Overdue or scrapped cylinders must not be filled or used; report unlicensed cylinders by scanning the cylinder''s QR code.')
  ) AS v (language, ord, title, body)
 ORDER BY v.language, v.ord DESC;
