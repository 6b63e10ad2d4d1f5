-- A child's newest state and a guardian's newest confirmation and reply are read as the last
-- entries of these indexes: with the key's id (the tie-break of rows written in the same instant)
-- in them, the guardian's CoCo-net page, the roll call and the dashboard sort nothing to find them.
DROP INDEX coconet_state_student;
CREATE INDEX coconet_state_student ON coconet_state (event_id, student_id, at, id);
DROP INDEX coconet_check_event;
CREATE INDEX coconet_check_event ON coconet_check (event_id, guardian_id, kind, at, id);
