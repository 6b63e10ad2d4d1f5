-- The audit log by subject: a message's review page looks up why it was last sent back
-- (messages.rejection_reason), which scanned the whole log without this.
CREATE INDEX audit_entry_subject ON audit_entry (subject_id, action, at);
