-- The guardian side: preferences, replies with files, system mail, and the indexes
-- guardians' pages read through.

-- Quiet hours (Asia/Tokyo, whole hours): routine messages released inside them are
-- due at their end; emergency messages ignore them. NULL: no quiet hours.
ALTER TABLE guardian ADD COLUMN quiet_from INTEGER CHECK (quiet_from BETWEEN 0 AND 23);
ALTER TABLE guardian ADD COLUMN quiet_until INTEGER CHECK (quiet_until BETWEEN 0 AND 23);

-- A 'system' message is a mail the appliance sends itself (a sign-in link, an address
-- confirmation; registration replies later): one recipient, one delivery to exactly
-- the contact point concerned. Staff lists and figures show only 'notice' messages.
-- link_scope names the capability token the mail's link carries (NULL: no link).
ALTER TABLE message ADD COLUMN kind TEXT NOT NULL DEFAULT 'notice' CHECK (kind IN ('notice', 'system'));
ALTER TABLE message ADD COLUMN link_scope TEXT;

-- A guardian's messages, newest first (the portal), and their read and answer state.
CREATE INDEX recipient_guardian ON recipient (guardian_id, message_id);

-- A guardian's free reply to a message, from the web page or (issue 7) by mail; a fact.
-- auth_results keeps the Authentication-Results of a mail reply ('' for the web).
CREATE TABLE reply (
    id              TEXT PRIMARY KEY,
    message_id      TEXT NOT NULL REFERENCES message (id),
    guardian_id     TEXT NOT NULL REFERENCES guardian (id),
    body            TEXT NOT NULL DEFAULT '',
    via             TEXT NOT NULL CHECK (via IN ('web', 'mail')),
    auth_results    TEXT NOT NULL DEFAULT '',
    site            TEXT NOT NULL,
    at              TEXT NOT NULL
);
CREATE INDEX reply_message ON reply (message_id, guardian_id, at);

-- The files of a reply (at most 1 MB together), kept in the database, outside any web root.
CREATE TABLE reply_file (
    id              TEXT PRIMARY KEY,
    reply_id        TEXT NOT NULL REFERENCES reply (id),
    filename        TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    size            INTEGER NOT NULL,
    data            BLOB NOT NULL
);
CREATE INDEX reply_file_reply ON reply_file (reply_id);
