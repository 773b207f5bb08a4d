-- batch_apply() of 009 in two: batch_check() runs its set-based checks over
-- the staged records and answers the failures, writing nothing;
-- batch_apply() calls it and writes the batch when it answers none. A batch
-- the schema refuses in part has its other records checked by
-- batch_check() alone (fcgi-app/api/batch_api.c), so that one answer lists every
-- invalid record without the batch's projects, serials and audit record
-- being written and rolled back (and their locks held meanwhile). The
-- checks and the writes are those of 009, unchanged.

CREATE FUNCTION batch_check(p_region text, p_kind text, p_submit boolean, p_max_errors integer)
RETURNS TABLE (status integer, rule text, record integer, line integer, col integer,
               message text, total bigint, overall_status integer, overall_rule text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_rules text := rules_region(p_region, 'rules_materials');
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
END
$$;

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
    v_records integer;
    v_batch bigint;
BEGIN
    RETURN QUERY SELECT * FROM batch_check(p_region, p_kind, p_submit, p_max_errors);
    IF FOUND THEN
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

REVOKE ALL ON FUNCTION batch_check(text, text, boolean, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION batch_check(text, text, boolean, integer) TO itpm_app;
