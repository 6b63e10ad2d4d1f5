-- CoCo-net, the disaster page: events (owned), and what is recorded during one
-- as facts (insert-only, any site may write them, merged by union), so that a
-- peer site can serve the page and record states, pickups, notices and guardians'
-- checks while the site that owns the school is lost. The current state of a
-- child is the newest state fact; nothing is ever updated in place.

-- One open event per school at a time: an open event switches CoCo-net on.
CREATE TABLE coconet_event (
    id          TEXT PRIMARY KEY,
    school_id   TEXT NOT NULL REFERENCES school (id),
    kind        TEXT NOT NULL CHECK (kind IN ('earthquake', 'tsunami', 'typhoon', 'flood', 'fire',
                                              'intruder', 'drill', 'other')),
    title       TEXT NOT NULL,
    body        TEXT NOT NULL DEFAULT '',
    message_id  TEXT REFERENCES message (id),      -- the first notice sent on every channel
    opened_by   TEXT NOT NULL,
    opened_at   TEXT NOT NULL,
    closed_by   TEXT,
    closed_at   TEXT
);
CREATE INDEX coconet_event_school ON coconet_event (school_id, opened_at);
CREATE UNIQUE INDEX coconet_event_open ON coconet_event (school_id) WHERE closed_at IS NULL;

-- A child's state as staff set it; the newest per (event, student) is the current one.
CREATE TABLE coconet_state (
    id          TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL REFERENCES coconet_event (id),
    student_id  TEXT NOT NULL REFERENCES student (id),
    state       TEXT NOT NULL CHECK (state IN ('protected', 'handed_over', 'evacuated', 'absent', 'unknown')),
    place       TEXT NOT NULL DEFAULT '',
    note        TEXT NOT NULL DEFAULT '',
    actor       TEXT NOT NULL,
    site        TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX coconet_state_student ON coconet_state (event_id, student_id, at);

-- The pickup register (引き渡し): who collected a child, a registered guardian or a named adult.
CREATE TABLE coconet_pickup (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES coconet_event (id),
    student_id      TEXT NOT NULL REFERENCES student (id),
    guardian_id     TEXT REFERENCES guardian (id),
    adult_name      TEXT NOT NULL DEFAULT '',
    note            TEXT NOT NULL DEFAULT '',
    collected_at    TEXT NOT NULL,
    actor           TEXT NOT NULL,
    site            TEXT NOT NULL,
    at              TEXT NOT NULL,
    CHECK (guardian_id IS NOT NULL OR adult_name <> '')
);
CREATE INDEX coconet_pickup_event ON coconet_pickup (event_id, student_id);

-- Notices from the school, shown newest first to every guardian of the school.
CREATE TABLE coconet_notice (
    id          TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL REFERENCES coconet_event (id),
    body        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    site        TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX coconet_notice_event ON coconet_notice (event_id, at);

-- A guardian's read report: each opening of the page, each "確認しました", each short reply.
CREATE TABLE coconet_check (
    id          TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL REFERENCES coconet_event (id),
    guardian_id TEXT NOT NULL REFERENCES guardian (id),
    kind        TEXT NOT NULL CHECK (kind IN ('open', 'confirm', 'reply')),
    body        TEXT NOT NULL DEFAULT '',
    site        TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX coconet_check_event ON coconet_check (event_id, guardian_id, kind);
