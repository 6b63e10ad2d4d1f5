-- Guardian registration (issue 7): the codes printed on registration sheets, the
-- registrations waiting for their mailed link to be opened, and guardians' enquiries.

-- A one-time code per guardian slot of a student (slots 1 and 2 on the sheets). Only
-- a keyed hash of the code is kept (appliance/registration.py). One live code per slot:
-- reissuing voids the old one; using it marks it used and names the guardian.
CREATE TABLE registration_code (
    id              TEXT PRIMARY KEY,
    school_id       TEXT NOT NULL REFERENCES school (id),
    student_id      TEXT NOT NULL REFERENCES student (id),
    slot            INTEGER NOT NULL CHECK (slot BETWEEN 1 AND 4),
    code_hash       TEXT NOT NULL UNIQUE,
    status          TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'used', 'void')),
    expires_at      TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    used_at         TEXT,
    guardian_id     TEXT REFERENCES guardian (id)
);
CREATE UNIQUE INDEX registration_code_live ON registration_code (student_id, slot) WHERE status = 'active';

-- A registration asked for on the web page or by an empty mail, waiting until the link
-- mailed to the address (message_id: that system mail) is opened. Then the address is
-- confirmed, the code used and a pending guardian_link made for the school to decide.
CREATE TABLE registration (
    id              TEXT PRIMARY KEY,
    code_id         TEXT NOT NULL REFERENCES registration_code (id),
    guardian_id     TEXT NOT NULL REFERENCES guardian (id),
    contact_id      TEXT NOT NULL REFERENCES contact_point (id),
    message_id      TEXT NOT NULL UNIQUE REFERENCES message (id),
    guardian_name   TEXT NOT NULL DEFAULT '',
    relationship    TEXT NOT NULL DEFAULT '',
    via             TEXT NOT NULL CHECK (via IN ('web', 'mail')),
    status          TEXT NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'done', 'void')),
    created_at      TEXT NOT NULL,
    completed_at    TEXT
);
CREATE INDEX registration_code_status ON registration (code_id, status);

-- A stuck guardian's enquiry for the operator's desk. How to reach them is contact data:
-- sealed like a contact point (AES-GCM, bound to the row) and shown to the operator only.
CREATE TABLE enquiry (
    id              TEXT PRIMARY KEY,
    school_id       TEXT REFERENCES school (id),
    name            TEXT NOT NULL,
    reach_sealed    BLOB NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_at      TEXT NOT NULL,
    closed_at       TEXT,
    closed_by       TEXT
);
CREATE INDEX enquiry_status ON enquiry (status, created_at);
