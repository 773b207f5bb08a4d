-- A project's data resources, also as one text column of its row.
--
-- The resources stay rows of their own (data_resources, the truth every
-- rule and list reads); projects.resources repeats them in the form the
-- daemon writes a project document from, so that reading a project, and
-- answering every write with it, reads one row: joining data_resources cost
-- a third of the server's time of a project read (plan start of a second
-- relation and its index, for the handful of resources a project has).
--
-- Form: one record per resource in resource code order (byte order),
-- records separated by U+001E and the six fields of a record (code, name,
-- source, share, frequency, aggregated as t or f) by U+001F; NULL when the
-- project has none. Neither separator can be in a field: the code's check
-- and share's list exclude them, and name, source and frequency refuse them
-- below (they are C0 controls, which no XML document carries either).
--
-- Kept by statement-level triggers on data_resources, whoever writes them
-- (the daemon's functions, a batch, an operator in psql), in the same
-- transaction. The trigger rewrites only the projects whose text differs,
-- so a writer that already set it (batch_apply, for a million rows at once)
-- costs the trigger one comparison per project.

ALTER TABLE data_resources
    ADD CONSTRAINT data_resources_no_separators
    CHECK (name !~ '[\x1e\x1f]' AND source !~ '[\x1e\x1f]' AND frequency !~ '[\x1e\x1f]');

ALTER TABLE projects ADD COLUMN resources text;
COMMENT ON COLUMN projects.resources IS
    'data_resources of the project as text (sql/009_resource_text.sql), kept by triggers';

-- One resource as a record of the text.
CREATE FUNCTION data_resource_record(p_code text, p_name text, p_source text, p_share text,
                                     p_frequency text, p_aggregated boolean)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT p_code || chr(31) || p_name || chr(31) || p_source || chr(31) || p_share || chr(31)
           || p_frequency || chr(31) || CASE WHEN p_aggregated THEN 't' ELSE 'f' END
$$;

-- The text of a project's resources as its rows now stand.
CREATE FUNCTION project_resources_text(p_project bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT string_agg(data_resource_record(d.code, d.name, d.source, d.share, d.frequency,
                                           d.aggregated),
                      chr(30) ORDER BY d.code COLLATE "C")
      FROM data_resources d WHERE d.project_id = p_project
$$;

-- Runs as the writer: the projects are locked and updated through the
-- writer's policies, as any change to a project is, and a writer that may
-- change a project's rows but not the project (the auditor reads every
-- project and changes none; the owner without a caller's settings sees
-- none) is refused rather than leaving the text behind the rows.
--
-- A project this transaction has made or changed already (a declaration, a
-- batch, project_update() after its lock) is out of every other writer's
-- reach until the commit: rows inserted for it set its text from the new
-- rows alone when it had none, or find it written already (batch_apply,
-- for a million projects at once, pays one comparison each). Any other
-- project is locked first and its text then read again from its rows, by a
-- later statement that sees every write committed before the lock, so
-- writers of one project's rows take turns instead of overwriting each
-- other's text.
CREATE FUNCTION data_resources_written() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_ids bigint[];
    v_locked integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH w AS (SELECT n.project_id AS id,
                          string_agg(data_resource_record(n.code, n.name, n.source, n.share,
                                                          n.frequency, n.aggregated),
                                     chr(30) ORDER BY n.code COLLATE "C") AS txt
                     FROM new_rows n GROUP BY n.project_id),
             f AS (UPDATE projects p SET resources = w.txt FROM w
                    WHERE p.id = w.id AND p.xmin = pg_current_xact_id()::xid
                      AND p.resources IS NULL
                   RETURNING p.id)
        SELECT ARRAY(SELECT w.id FROM w LEFT JOIN projects p ON p.id = w.id
                      WHERE w.id NOT IN (SELECT f.id FROM f)
                        AND (p.id IS NULL OR p.xmin <> pg_current_xact_id()::xid
                             OR p.resources IS DISTINCT FROM w.txt))
          INTO v_ids;
    ELSIF TG_OP = 'DELETE' THEN
        v_ids := ARRAY(SELECT DISTINCT o.project_id FROM old_rows o);
    ELSE
        v_ids := ARRAY(SELECT o.project_id FROM old_rows o
                       UNION SELECT n.project_id FROM new_rows n);
    END IF;
    IF cardinality(v_ids) > 0 THEN
        -- FOR NO KEY UPDATE applies the update policy too.
        SELECT count(*) INTO v_locked
          FROM (SELECT 1 FROM projects p WHERE p.id = ANY (v_ids) ORDER BY p.id
                   FOR NO KEY UPDATE) l;
        IF v_locked < cardinality(v_ids) THEN
            PERFORM itpm_refuse(403, 'forbidden', 'this project is outside what you may change');
        END IF;
        UPDATE projects p SET resources = t.txt
          FROM (SELECT i.id, project_resources_text(i.id) AS txt FROM unnest(v_ids) AS i (id)) t
         WHERE p.id = t.id AND p.resources IS DISTINCT FROM t.txt;
    END IF;
    RETURN NULL;
END
$$;

-- A TRUNCATE fires no row trigger and would leave every text behind: it
-- is refused (DELETE does the same and keeps the texts).
CREATE FUNCTION data_resources_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'data_resources cannot be truncated: delete the rows instead'
          USING ERRCODE = '42501';
END
$$;
CREATE TRIGGER data_resources_no_truncate BEFORE TRUNCATE ON data_resources
    FOR EACH STATEMENT EXECUTE FUNCTION data_resources_no_truncate();

CREATE TRIGGER data_resources_inserted AFTER INSERT ON data_resources
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION data_resources_written();
CREATE TRIGGER data_resources_deleted AFTER DELETE ON data_resources
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION data_resources_written();
CREATE TRIGGER data_resources_updated AFTER UPDATE ON data_resources
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION data_resources_written();

-- The projects that have resources already: the policies of projects are
-- forced on the owner too, and a migration has no caller to scope it.
ALTER TABLE projects NO FORCE ROW LEVEL SECURITY;
UPDATE projects p SET resources = project_resources_text(p.id)
 WHERE p.id IN (SELECT project_id FROM data_resources);
ALTER TABLE projects FORCE ROW LEVEL SECURITY;

-- The text is only ever written by the triggers above (depth 1, whose own
-- update fires this at depth 2), and with a project as batch_apply()
-- inserts it: an update of the column from anywhere else is refused.
CREATE FUNCTION projects_resources_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'projects.resources is kept by the triggers on data_resources'
              USING ERRCODE = '42501';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER projects_resources_kept BEFORE UPDATE OF resources ON projects
    FOR EACH ROW EXECUTE FUNCTION projects_resources_kept();

-- batch_apply() of 006 with the resources' text written with each project, from
-- the staged arrays (the trigger then finds it right): the same function
-- otherwise. A rewrite of a million rows after the insert would cost the
-- batch a second version of each, with every index entry.
CREATE OR REPLACE FUNCTION batch_apply(p_region text, p_batch text, p_kind text, p_submit boolean,
                            p_sha text, p_bytes bigint, p_addr text, p_rid text,
                            p_max_errors integer)
RETURNS TABLE (status integer, rule text, record integer, line integer, col integer,
               message text, total bigint, overall_status integer, overall_rule text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_actor text := current_setting('itpm.user_id', true);
    v_role text := CASE WHEN itpm_has_role('county_admin') THEN 'county_admin' ELSE 'reviewer' END;
    -- A declaration's stage: an existing system enters at operation (in a
    -- batch of either kind, as when declared singly by these roles).
    v_stage project_stage := CASE WHEN p_submit THEN 'endorsement' ELSE 'draft' END;
    v_rules text := rules_region(p_region, 'rules_materials');
    v_records integer;
    v_batch bigint;
BEGIN
    CREATE TEMP TABLE batch_errors (
        status integer, rule text, record integer, line integer, col integer, message text
    ) ON COMMIT DROP;
    ANALYZE pg_temp.batch_stage;

    INSERT INTO batch_errors
    SELECT 422, NULL, s.rec, s.line, s.col,
           format('unit %s is not a unit of region %s', s.unit, p_region)
      FROM pg_temp.batch_stage s LEFT JOIN units u ON u.code = s.unit
     WHERE u.region IS DISTINCT FROM p_region
    UNION ALL
    SELECT 422, NULL, s.rec, s.line, s.col,
           'a batch of existing systems holds only category existing'
      FROM pg_temp.batch_stage s
     WHERE p_kind = 'existing' AND s.category <> 'existing'
    UNION ALL
    SELECT 422, NULL, d.rec, d.line, d.col,
           format('ref %s repeats record %s', d.ref, d.first)
      FROM (SELECT s.rec, s.line, s.col, s.ref, min(s.rec) OVER (PARTITION BY s.ref) AS first
              FROM pg_temp.batch_stage s WHERE s.ref IS NOT NULL) d
     WHERE d.rec <> d.first
    UNION ALL
    SELECT 409, 'batch_conflict', s.rec, s.line, s.col,
           format('ref %s is already project %s', s.ref, p.code)
      FROM pg_temp.batch_stage s JOIN projects p ON p.region = p_region AND p.source_ref = s.ref
    UNION ALL
    SELECT 403, NULL, s.rec, s.line, s.col, 'a classified project needs the classified clearance'
      FROM pg_temp.batch_stage s
     WHERE s.classified AND NOT itpm_cleared()
    UNION ALL
    -- Codes have five serial digits: the first record past 99999 in a year.
    SELECT 409, NULL, n.rec, n.line, n.col,
           format('no project code is left for %s in region %s', n.year, p_region)
      FROM (SELECT s.rec, s.line, s.col, s.year,
                   row_number() OVER (PARTITION BY s.year ORDER BY s.rec)
                   + coalesce((SELECT last_serial FROM project_serials ps
                                WHERE ps.region = p_region AND ps.year = s.year), 0) AS serial
              FROM pg_temp.batch_stage s) n
     WHERE n.serial = 100000;

    IF p_submit THEN
        IF p_kind <> 'projects' THEN
            INSERT INTO batch_errors VALUES
                (422, NULL, NULL, NULL, NULL, 'only a batch of projects can be submitted');
        END IF;
        -- The gates of submit, as project_transition() checks them one by one.
        INSERT INTO batch_errors
        SELECT 409, CASE WHEN NOT s.urgent THEN 'window_closed' ELSE 'urgent_reason_missing' END,
               s.rec, s.line, s.col,
               CASE WHEN NOT s.urgent
                    THEN 'the declaration window for ' || s.year || ' is not open'
                    ELSE 'an urgent declaration outside the window needs a reason' END
          FROM pg_temp.batch_stage s
         WHERE s.category <> 'existing'
           AND NOT coalesce(
                 (SELECT current_date BETWEEN w.opens AND w.closes FROM rules_windows w
                   WHERE w.region = p_region AND w.year = s.year),
                 (SELECT current_date BETWEEN w.opens AND w.closes FROM rules_windows w
                    JOIN regions r ON r.code = w.region AND r.kind = 'city'
                   WHERE w.year = s.year),
                 false)
           AND (NOT s.urgent OR itpm_blank(s.urgent_reason))
        UNION ALL
        SELECT 409, 'materials_missing', s.rec, s.line, s.col,
               'missing: ' || m.kinds || ' (a batch carries no attachments)'
          FROM pg_temp.batch_stage s
          JOIN LATERAL (SELECT string_agg(kind, ', ' ORDER BY kind) AS kinds
                          FROM rules_materials
                         WHERE region = v_rules AND action = 'submit'
                           AND (NOT classified_only OR s.classified)) m ON m.kinds IS NOT NULL
         WHERE s.category <> 'existing';
    END IF;

    IF EXISTS (SELECT 1 FROM batch_errors) THEN
        RETURN QUERY
        WITH o AS (
            SELECT CASE WHEN bool_or(e.status = 422) THEN 422
                        WHEN bool_or(e.status = 403) THEN 403 ELSE 409 END AS st,
                   count(*) AS n
              FROM batch_errors e)
        SELECT e.status, e.rule, e.record, e.line, e.col, e.message, o.n, o.st,
               (SELECT e2.rule FROM batch_errors e2 WHERE e2.status = o.st AND e2.rule IS NOT NULL
                 ORDER BY e2.record NULLS FIRST LIMIT 1)
          FROM batch_errors e, o
         ORDER BY e.record NULLS FIRST, e.status
         LIMIT p_max_errors;
        RETURN;
    END IF;

    SELECT count(*) INTO v_records FROM pg_temp.batch_stage;
    INSERT INTO batches (region, batch_id, kind, submitted, sha256, records, created, bytes,
                         submitter)
    VALUES (p_region, p_batch, p_kind, p_submit, p_sha, v_records, v_records, p_bytes, v_actor)
    RETURNING id INTO v_batch;

    -- Serials: each year's counter moves once by that year's count, under
    -- its row lock, so concurrent declarations never interleave with a batch.
    CREATE TEMP TABLE batch_serials ON COMMIT DROP AS
    WITH n AS (SELECT s.year, count(*)::integer AS cnt FROM pg_temp.batch_stage s GROUP BY s.year),
         up AS (INSERT INTO project_serials AS ps (region, year, last_serial)
                SELECT p_region, n.year, n.cnt FROM n
                ON CONFLICT (region, year) DO UPDATE SET last_serial = ps.last_serial + EXCLUDED.last_serial
                RETURNING ps.year, ps.last_serial)
    SELECT up.year, up.last_serial - n.cnt AS base FROM up JOIN n ON n.year = up.year;

    INSERT INTO projects (code, region, unit, year, serial, title, category, stage, classified,
                          soe, public_institution, cross_department, vertical, key_project,
                          urgent, urgent_reason, budget_requested_fen, funding, construction_mode,
                          exemption_reason, schedule_start, schedule_end, contact_name,
                          contact_phone, contact_email, summary, created_by, batch_id,
                          batch_record, source_ref, resources)
    SELECT p_region || '-' || x.year || '-' || lpad(x.serial::text, 5, '0'), p_region, x.unit,
           x.year, x.serial, x.title, x.category::project_category,
           CASE WHEN x.category = 'existing' THEN 'operation'::project_stage ELSE v_stage END,
           x.classified, x.soe,
           x.public_inst, x.cross_dept, x.vertical, x.key_project, x.urgent,
           coalesce(x.urgent_reason, ''), x.budget_fen, x.funding, x.mode,
           coalesce(x.exemption, ''), x.sched_start, x.sched_end, coalesce(x.contact_name, ''),
           coalesce(x.contact_phone, ''), coalesce(x.contact_email, ''), coalesce(x.summary, ''),
           v_actor, v_batch, x.rec, x.ref,
           (SELECT string_agg(data_resource_record(r.c, r.n, r.s, r.sh, r.f, r.a), chr(30)
                              ORDER BY r.c COLLATE "C")
              FROM unnest(x.res_code, x.res_name, x.res_source, x.res_share, x.res_frequency,
                          x.res_aggregated) AS r (c, n, s, sh, f, a))
      FROM (SELECT s.*, b.base + row_number() OVER (PARTITION BY s.year ORDER BY s.rec) AS serial
              FROM pg_temp.batch_stage s JOIN batch_serials b ON b.year = s.year) x;

    INSERT INTO data_resources (project_id, code, name, source, share, frequency, aggregated)
    SELECT p.id, r.c, r.n, r.s, r.sh, r.f, r.a
      FROM pg_temp.batch_stage s
      JOIN projects p ON p.batch_id = v_batch AND p.batch_record = s.rec
     CROSS JOIN LATERAL unnest(s.res_code, s.res_name, s.res_source, s.res_share,
                               s.res_frequency, s.res_aggregated) AS r(c, n, s, sh, f, a)
     WHERE cardinality(s.res_code) > 0;

    INSERT INTO project_events (project_id, actor, role, action, from_stage, to_stage, reason)
    SELECT p.id, v_actor, v_role, 'create', NULL,
           CASE WHEN p.stage = 'operation' THEN p.stage ELSE 'draft' END, 'batch ' || p_batch
      FROM projects p WHERE p.batch_id = v_batch;
    IF p_submit THEN
        INSERT INTO project_events (project_id, actor, role, action, from_stage, to_stage, reason)
        SELECT p.id, v_actor, v_role, 'submit', 'draft', p.stage, 'batch ' || p_batch
          FROM projects p WHERE p.batch_id = v_batch AND p.stage = 'endorsement';
    END IF;

    PERFORM audit_append(v_actor, v_role, p_addr, p_rid, 'batch',
                         'batch:' || p_region || '/' || p_batch,
                         format('kind=%s submit=%s records=%s created=%s bytes=%s sha256=%s',
                                p_kind, p_submit, v_records, v_records, p_bytes, p_sha));
    RETURN;
END
$$;

-- The project as the daemon writes it, now with its resources' text last.
CREATE OR REPLACE VIEW project_heads WITH (security_invoker = true) AS
SELECT p.code, p.version, p.stage, p.title, p.unit, p.year, p.category, p.classified, p.soe,
       p.public_institution, p.cross_department, p.vertical, p.key_project, p.urgent,
       p.urgent_reason, p.budget_requested_fen, p.funding, p.construction_mode,
       p.exemption_reason, p.schedule_start, p.schedule_end, p.contact_name, p.contact_phone,
       p.contact_email, p.summary, p.region, p.budget_approved_fen, p.list_year,
       p.return_reason,
       to_char(p.stage_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS stage_since,
       to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created,
       to_char(p.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS updated,
       p.id, p.resources
  FROM projects p;

-- One row per project now: the res_* columns (one resource per row before)
-- stay, always NULL, because the functions that answer with this view's
-- rows (project_create, project_update, project_transition) return its
-- type; the resources are in the last column.
CREATE OR REPLACE VIEW project_documents WITH (security_barrier = true) AS
SELECT h.code, h.version, h.stage, h.title, h.unit, h.year, h.category, h.classified, h.soe,
       h.public_institution, h.cross_department, h.vertical, h.key_project, h.urgent,
       h.urgent_reason, h.budget_requested_fen, h.funding, h.construction_mode,
       h.exemption_reason, h.schedule_start, h.schedule_end, h.contact_name, h.contact_phone,
       h.contact_email, h.summary, h.region, h.budget_approved_fen, h.list_year,
       h.return_reason, h.stage_since, h.created, h.updated, h.id,
       NULL::text AS res_code, NULL::text AS res_name, NULL::text AS res_source,
       NULL::text AS res_share, NULL::text AS res_frequency, NULL::boolean AS res_aggregated,
       h.resources
  FROM project_heads h;
