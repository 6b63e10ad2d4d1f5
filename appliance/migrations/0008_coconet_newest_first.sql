-- A child's newest state and a guardian's newest reply are read as the last entry of these
-- indexes: with the key's id (the tie-break of rows written in the same instant) in them, the
-- guardian's CoCo-net page and the roll call read no state row to order them.
DROP INDEX coconet_state_student;
CREATE INDEX coconet_state_student ON coconet_state (event_id, student_id, at, id);
DROP INDEX coconet_check_event;
CREATE INDEX coconet_check_event ON coconet_check (event_id, guardian_id, kind, at, id);
