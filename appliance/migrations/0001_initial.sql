-- Schema of the first release. Never edit: changes go in a new numbered file.
-- Every replicated table has a UUIDv7 text primary key. Times are UTC text
-- ('YYYY-MM-DD HH:MM:SS.ffffff'). Kept to SQL that PostgreSQL also accepts,
-- except BLOB (bytea there).

CREATE TABLE school (
    id          TEXT PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    grades      INTEGER NOT NULL DEFAULT 6 CHECK (grades BETWEEN 1 AND 12),
    school_year INTEGER NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE staff_user (
    id              TEXT PRIMARY KEY,
    school_id       TEXT REFERENCES school (id),
    role            TEXT NOT NULL CHECK (role IN ('operator', 'school_admin', 'teacher')),
    login           TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL DEFAULT '',
    password_hash   TEXT NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    CHECK ((role = 'operator') = (school_id IS NULL))
);

CREATE TABLE student (
    id              TEXT PRIMARY KEY,
    school_id       TEXT NOT NULL REFERENCES school (id),
    student_number  TEXT,
    grade           INTEGER NOT NULL,
    class_name      TEXT NOT NULL,
    number          INTEGER NOT NULL,
    name            TEXT NOT NULL,
    furigana        TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL DEFAULT 'enrolled'
                    CHECK (status IN ('enrolled', 'transferred_out', 'graduated')),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX student_school_number ON student (school_id, student_number)
    WHERE student_number IS NOT NULL;
CREATE UNIQUE INDEX student_enrolled_seat ON student (school_id, grade, class_name, number)
    WHERE status = 'enrolled';

CREATE TABLE student_group (
    id          TEXT PRIMARY KEY,
    school_id   TEXT NOT NULL REFERENCES school (id),
    kind        TEXT NOT NULL CHECK (kind IN ('club', 'route', 'custom')),
    key         TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (school_id, kind, key)
);

CREATE TABLE membership (
    id          TEXT PRIMARY KEY,
    group_id    TEXT NOT NULL REFERENCES student_group (id) ON DELETE CASCADE,
    student_id  TEXT NOT NULL REFERENCES student (id),
    UNIQUE (group_id, student_id)
);
CREATE INDEX membership_student ON membership (student_id);

CREATE TABLE guardian (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    locale      TEXT NOT NULL DEFAULT 'ja',
    created_at  TEXT NOT NULL
);

CREATE TABLE guardian_link (
    id              TEXT PRIMARY KEY,
    guardian_id     TEXT NOT NULL REFERENCES guardian (id),
    student_id      TEXT NOT NULL REFERENCES student (id),
    relationship    TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at      TEXT NOT NULL,
    decided_at      TEXT,
    UNIQUE (guardian_id, student_id)
);
CREATE INDEX guardian_link_student ON guardian_link (student_id, status);

-- Contact points: read and written only through appliance/contacts.py.
-- sealed = AES-GCM(nonce || ciphertext); lookup = HMAC of the normalised value,
-- so an address can be found without decrypting the table.
CREATE TABLE contact_point (
    id              TEXT PRIMARY KEY,
    guardian_id     TEXT NOT NULL REFERENCES guardian (id),
    kind            TEXT NOT NULL CHECK (kind IN ('email', 'push', 'phone', 'fax')),
    position        INTEGER NOT NULL CHECK (position BETWEEN 1 AND 4),
    sealed          BLOB NOT NULL,
    lookup          TEXT NOT NULL,
    label           TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'active', 'suspended', 'removed')),
    created_at      TEXT NOT NULL,
    confirmed_at    TEXT
);
CREATE UNIQUE INDEX contact_point_slot ON contact_point (guardian_id, kind, position)
    WHERE status <> 'removed';
CREATE INDEX contact_point_lookup ON contact_point (kind, lookup);
-- Covers the snapshot join (recipients -> their live addresses) without touching rows.
CREATE INDEX contact_point_guardian ON contact_point (guardian_id, kind, status, id);

CREATE TABLE message (
    id              TEXT PRIMARY KEY,
    school_id       TEXT NOT NULL REFERENCES school (id),
    author_id       TEXT REFERENCES staff_user (id),
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    audience        TEXT NOT NULL,
    priority        TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('emergency', 'normal')),
    reply_needed    INTEGER NOT NULL DEFAULT 0,
    channels        TEXT NOT NULL DEFAULT 'email',
    send_at         TEXT NOT NULL,
    expires_at      TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX message_school ON message (school_id, created_at);

CREATE TABLE survey_question (
    id          TEXT PRIMARY KEY,
    message_id  TEXT NOT NULL REFERENCES message (id),
    position    INTEGER NOT NULL CHECK (position BETWEEN 1 AND 10),
    kind        TEXT NOT NULL CHECK (kind IN ('single', 'multiple', 'text')),
    prompt      TEXT NOT NULL,
    options     TEXT NOT NULL DEFAULT '[]',
    required    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (message_id, position)
);

CREATE TABLE attachment (
    id              TEXT PRIMARY KEY,
    message_id      TEXT NOT NULL REFERENCES message (id),
    filename        TEXT NOT NULL,
    content_type    TEXT NOT NULL,
    size            INTEGER NOT NULL,
    data            BLOB NOT NULL
);
CREATE INDEX attachment_message ON attachment (message_id);

-- The snapshot of who a message was resolved to, taken when it was created.
CREATE TABLE recipient (
    id          TEXT PRIMARY KEY,
    message_id  TEXT NOT NULL REFERENCES message (id),
    guardian_id TEXT NOT NULL REFERENCES guardian (id),
    UNIQUE (message_id, guardian_id)
);

-- One row per contact point a message goes to. state caches the newest
-- delivery_result for the queue's sake; the results are the record.
CREATE TABLE delivery (
    id              TEXT PRIMARY KEY,
    message_id      TEXT NOT NULL REFERENCES message (id),
    recipient_id    TEXT NOT NULL REFERENCES recipient (id),
    contact_id      TEXT NOT NULL REFERENCES contact_point (id),
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'push', 'phone', 'fax')),
    priority        INTEGER NOT NULL,      -- 0 emergency, 1 normal: the message's, copied for the queue index
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'deferred', 'delivered', 'bounced', 'expired')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    due_at          TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
-- The queue: what is pending, in the order it is claimed (emergency first, fresh
-- mail before retries, oldest first), so a claim reads the head instead of sorting.
CREATE INDEX delivery_queue ON delivery (channel, priority, attempts, due_at)
    WHERE state IN ('queued', 'deferred');
CREATE INDEX delivery_message ON delivery (message_id, channel, state);

-- Facts: insert-only, written at any site, merged by union.
CREATE TABLE delivery_result (
    id          TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES delivery (id),
    outcome     TEXT NOT NULL CHECK (outcome IN ('delivered', 'deferred', 'bounced', 'expired')),
    detail      TEXT NOT NULL DEFAULT '',
    site        TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX delivery_result_delivery ON delivery_result (delivery_id);

CREATE TABLE receipt (
    id          TEXT PRIMARY KEY,
    message_id  TEXT NOT NULL REFERENCES message (id),
    guardian_id TEXT NOT NULL REFERENCES guardian (id),
    kind        TEXT NOT NULL DEFAULT 'read' CHECK (kind IN ('read')),
    site        TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX receipt_message ON receipt (message_id, guardian_id);

CREATE TABLE survey_answer (
    id          TEXT PRIMARY KEY,
    message_id  TEXT NOT NULL REFERENCES message (id),
    guardian_id TEXT NOT NULL REFERENCES guardian (id),
    question_id TEXT NOT NULL REFERENCES survey_question (id),
    value       TEXT NOT NULL,
    site        TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX survey_answer_message ON survey_answer (message_id, guardian_id);

CREATE TABLE audit_entry (
    id          TEXT PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    school_id   TEXT,
    subject_id  TEXT,
    detail      TEXT NOT NULL DEFAULT '{}',
    site        TEXT NOT NULL
);
CREATE INDEX audit_entry_at ON audit_entry (at);

-- Capability tokens behind guardian links (/r/<token>, /u/<token>). Only the
-- SHA-256 of a token is kept, so a copy of the database (a backup, a peer) holds
-- no working link. scope has no CHECK: each new kind of link (CoCo-net, surveys)
-- adds a scope, and SQLite can only change a CHECK by rebuilding the table.
CREATE TABLE capability_token (
    id          TEXT PRIMARY KEY,
    token_hash  BLOB NOT NULL UNIQUE,
    scope       TEXT NOT NULL,
    guardian_id TEXT NOT NULL REFERENCES guardian (id),
    message_id  TEXT REFERENCES message (id),
    expires_at  TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX capability_token_expiry ON capability_token (expires_at);
