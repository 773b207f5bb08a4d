-- A project's rules checked when the columns they are about are written.
--
-- PostgreSQL evaluates every CHECK constraint of a table on every UPDATE,
-- whatever the update sets, and reads each one back from its stored text
-- and plans it again at the start of every statement that writes the table:
-- on a transition, which sets only the stage, version and list columns, the
-- twelve rules about a project's code, title, budget, schedule and batch were
-- a fifth of the server's work (callgrind, one backend; a plain UPDATE of a
-- project took 187 µs with them and 113 µs without).
--
-- Those rules now live in projects_fault(), asked by a trigger's condition
-- only when an INSERT or an UPDATE sets one of their columns: the condition
-- is prepared once per statement and evaluated per row like a check (a
-- batch of a million inserts pays what it paid), the function it calls is
-- inlined, and an update that sets none of those columns (every transition,
-- the resources text) skips it without reading it. The rules on what a
-- transition writes stay CHECK constraints: version, list year, approved
-- budget.
--
-- A BEFORE trigger that changes one of these columns must be named to fire
-- before projects_rules (triggers fire in name order), so that the condition
-- sees the row as stored.

ALTER TABLE projects
    DROP CONSTRAINT projects_code_check,
    DROP CONSTRAINT projects_code_parts,
    DROP CONSTRAINT projects_year_check,
    DROP CONSTRAINT projects_serial_check,
    DROP CONSTRAINT projects_title_check,
    DROP CONSTRAINT projects_budget_requested_fen_check,
    DROP CONSTRAINT projects_funding_check,
    DROP CONSTRAINT projects_construction_mode_check,
    DROP CONSTRAINT schedule_order,
    DROP CONSTRAINT projects_batch_record_check,
    DROP CONSTRAINT batch_record_with_batch,
    DROP CONSTRAINT projects_source_ref_check;

-- The name of the first rule the row breaks, NULL if none (a rule whose
-- expression is NULL holds, as a CHECK does). The names are those of the
-- constraints they replace, in the order PostgreSQL checked those (by name).
CREATE FUNCTION projects_fault(p projects) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN ((p.batch_id IS NULL) = (p.batch_record IS NULL)) IS FALSE
             THEN 'batch_record_with_batch'
        WHEN (p.batch_record >= 1) IS FALSE THEN 'projects_batch_record_check'
        WHEN (p.budget_requested_fen BETWEEN 0 AND 100000000000000) IS FALSE
             THEN 'projects_budget_requested_fen_check'
        WHEN (p.code ~ '^[0-9]{6}-[0-9]{4}-[0-9]{5}$') IS FALSE THEN 'projects_code_check'
        WHEN (p.code = p.region || '-' || p.year::text || '-' || lpad(p.serial::text, 5, '0'))
             IS FALSE THEN 'projects_code_parts'
        WHEN (p.construction_mode IN ('centralized', 'self-built')) IS FALSE
             THEN 'projects_construction_mode_check'
        WHEN (p.funding IN ('fiscal', 'self', 'mixed')) IS FALSE THEN 'projects_funding_check'
        WHEN (p.serial BETWEEN 1 AND 99999) IS FALSE THEN 'projects_serial_check'
        WHEN (p.source_ref ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$') IS FALSE
             THEN 'projects_source_ref_check'
        WHEN (length(p.title) BETWEEN 1 AND 200) IS FALSE THEN 'projects_title_check'
        WHEN (p.year BETWEEN 2000 AND 2100) IS FALSE THEN 'projects_year_check'
        WHEN (p.schedule_end IS NULL OR p.schedule_start IS NULL
              OR p.schedule_end >= p.schedule_start) IS FALSE THEN 'schedule_order'
    END
$$;

-- Runs only for a row that breaks a rule: refuses it as a CHECK would.
CREATE FUNCTION projects_refuse_fault() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_rule text := projects_fault(NEW);
BEGIN
    RAISE EXCEPTION 'new row for relation "projects" violates check constraint "%"', v_rule
          USING ERRCODE = 'check_violation', TABLE = 'projects', CONSTRAINT = v_rule;
END
$$;

CREATE TRIGGER projects_rules
    BEFORE INSERT OR UPDATE OF code, region, year, serial, title, budget_requested_fen, funding,
                               construction_mode, schedule_start, schedule_end, batch_id,
                               batch_record, source_ref
    ON projects FOR EACH ROW
    WHEN (projects_fault(NEW) IS NOT NULL)
    EXECUTE FUNCTION projects_refuse_fault();

-- The audit chain's hashes: the length rule as a domain, which PostgreSQL
-- keeps prepared in its type cache, instead of two CHECK constraints read
-- and planned again at every audited write.
CREATE DOMAIN sha256_digest AS bytea CHECK (length(VALUE) = 32);
ALTER TABLE audit_log
    DROP CONSTRAINT audit_log_prev_hash_check,
    DROP CONSTRAINT audit_log_hash_check,
    ALTER COLUMN prev_hash TYPE sha256_digest,
    ALTER COLUMN hash TYPE sha256_digest;
