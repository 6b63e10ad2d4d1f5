-- The staff web UI: sign-in safety, teachers' classes and clubs, approval of
-- teachers' messages, and the notice templates staff start from.

-- Repeated wrong passwords lock an account for a while; session_epoch is written
-- into every session cookie, so raising it signs the user out on every device.
-- totp_secret is sealed (AES-GCM, the data dir's contact key), NULL when unused.
ALTER TABLE staff_user ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE staff_user ADD COLUMN locked_until TEXT;
ALTER TABLE staff_user ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE staff_user ADD COLUMN totp_secret BLOB;

-- A teacher composes only to their own classes ('1-2') and clubs (a group name).
CREATE TABLE staff_assignment (
    id              TEXT PRIMARY KEY,
    staff_user_id   TEXT NOT NULL REFERENCES staff_user (id),
    kind            TEXT NOT NULL CHECK (kind IN ('class', 'club')),
    value           TEXT NOT NULL,
    UNIQUE (staff_user_id, kind, value)
);

-- Whether a teacher's message waits for a school_admin before it is sent.
ALTER TABLE school ADD COLUMN teacher_needs_approval INTEGER NOT NULL DEFAULT 1;

-- Composing saves a draft (attachments and survey included) that the confirmation
-- step shows; a draft or a message waiting for approval has no recipients yet:
-- releasing it snapshots the audience then. 'released' is every message that went
-- to the queue (the CLI's `send` releases at once).
ALTER TABLE message ADD COLUMN status TEXT NOT NULL DEFAULT 'released'
    CHECK (status IN ('draft', 'awaiting_approval', 'released', 'rejected'));
ALTER TABLE message ADD COLUMN decided_by_id TEXT REFERENCES staff_user (id);
CREATE INDEX message_status ON message (school_id, status);

-- Notices staff start from (臨時休校, 引き渡し, 不審者情報 ...); each school edits its own.
CREATE TABLE notice_template (
    id          TEXT PRIMARY KEY,
    school_id   TEXT NOT NULL REFERENCES school (id),
    name        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    priority    TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('emergency', 'normal')),
    updated_at  TEXT NOT NULL,
    UNIQUE (school_id, name)
);

-- Survey results count the newest answer per guardian and question: this order lets
-- the window read it from the index instead of sorting every answer of the message.
CREATE INDEX survey_answer_current ON survey_answer (message_id, question_id, guardian_id, at);

-- The operator's audit log pages filter by school and by actor, newest first.
CREATE INDEX audit_entry_school ON audit_entry (school_id, at);
CREATE INDEX audit_entry_actor ON audit_entry (actor, at);
