-- Routine mail: a guardian may stop the school's routine notices by email (the
-- List-Unsubscribe link or address in every routine mail, or the portal). 0: releasing
-- a routine message makes no email delivery for them; emergency messages, system mail
-- and push are unaffected. Their own choice, so not audited; when it last changed is
-- kept beside it (NULL: never changed).
ALTER TABLE guardian ADD COLUMN routine_mail INTEGER NOT NULL DEFAULT 1 CHECK (routine_mail IN (0, 1));
ALTER TABLE guardian ADD COLUMN routine_mail_changed_at TEXT;
