-- The hot paths, made cheaper without changing what they decide: the scope
-- context every request sets, the project as one document, and the audit
-- chain's lock, which every audited write in the database waits for, held
-- only for what the chain itself needs.

-- Scope ---------------------------------------------------------------------

-- The caller's scope from their roles, unit and region (the rules of
-- itpm_set_context() in 004, unchanged). A set-returning SQL function the
-- planner inlines, so a prepared statement that sets the context from it is
-- planned once per connection: the PL/pgSQL version cost every request a
-- function call and two statements of its own.
CREATE FUNCTION itpm_scope(p_unit text, p_region text, p_roles text)
RETURNS TABLE (all_read text, all_write text, scope_region text, scope_unit text)
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN s.city OR s.roles && ARRAY['auditor', 'admin'] THEN 'on' ELSE 'off' END,
           CASE WHEN s.city THEN 'on' ELSE 'off' END,
           CASE WHEN s.gate OR 'county_admin' = ANY (s.roles) THEN p_region ELSE '' END,
           CASE WHEN s.roles && ARRAY['submitter', 'cdo'] THEN p_unit ELSE '' END
      FROM (SELECT r.roles, r.gate,
                   r.gate AND EXISTS (SELECT 1 FROM regions g
                                       WHERE g.code = p_region AND g.kind = 'city') AS city
              FROM (SELECT v.roles, v.roles && ARRAY['reviewer', 'director'] AS gate
                      FROM (SELECT string_to_array(coalesce(p_roles, ''), ',') AS roles) v) r) s
$$;

-- The statement itpmd prepares (fcgi-app/db/db.c) is this function's body; the
-- function is there for psql, the tests and the batch path.
DROP FUNCTION itpm_set_context(text, text, text, text, boolean);
CREATE FUNCTION itpm_set_context(p_user text, p_unit text, p_region text, p_roles text,
                                 p_classified boolean)
RETURNS void LANGUAGE sql AS $$
    SELECT set_config('itpm.user_id', p_user, true), set_config('itpm.unit', p_unit, true),
           set_config('itpm.region', p_region, true), set_config('itpm.roles', p_roles, true),
           set_config('itpm.classified', CASE WHEN p_classified THEN 'on' ELSE 'off' END, true),
           set_config('itpm.scope_all_read', s.all_read, true),
           set_config('itpm.scope_all_write', s.all_write, true),
           set_config('itpm.scope_region', s.scope_region, true),
           set_config('itpm.scope_unit', s.scope_unit, true)
      FROM itpm_scope(p_unit, p_region, p_roles) s;
$$;

-- The project as one document --------------------------------------------------

-- The project as the daemon writes it (times UTC to the second), one row
-- per project, its id last: what a list reads, as the caller (the policies
-- of projects apply as to a query on the table).
CREATE VIEW project_heads WITH (security_invoker = true) AS
SELECT p.code, p.version, p.stage, p.title, p.unit, p.year, p.category, p.classified, p.soe,
       p.public_institution, p.cross_department, p.vertical, p.key_project, p.urgent,
       p.urgent_reason, p.budget_requested_fen, p.funding, p.construction_mode,
       p.exemption_reason, p.schedule_start, p.schedule_end, p.contact_name, p.contact_phone,
       p.contact_email, p.summary, p.region, p.budget_approved_fen, p.list_year,
       p.return_reason,
       to_char(p.stage_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS stage_since,
       to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS created,
       to_char(p.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS updated,
       p.id
  FROM projects p;
GRANT SELECT ON project_heads TO itpm_app;

-- The same with its data resources, one row per resource (the resource's
-- columns NULL when it has none), as the schema's owner sees it. The
-- policies of projects are forced on the owner too, so the view shows the
-- caller's projects only (the policies read the caller's itpm.* settings),
-- while data_resources, no longer forced, is read without its own policy,
-- which would only ask again of every row whether its project is visible.
-- The daemon's role keeps that policy on every direct use of the table.
ALTER TABLE data_resources NO FORCE ROW LEVEL SECURITY;
CREATE VIEW project_documents WITH (security_barrier) AS
SELECT h.*, d.code AS res_code, d.name AS res_name, d.source AS res_source,
       d.share AS res_share, d.frequency AS res_frequency, d.aggregated AS res_aggregated
  FROM project_heads h
  LEFT JOIN data_resources d ON d.project_id = h.id;
GRANT SELECT ON project_documents TO itpm_app;

-- The project p_code in the caller's scope, in resource order. Inlined by
-- the planner, so the code drives the index.
CREATE FUNCTION project_rows(p_code text) RETURNS SETOF project_documents
LANGUAGE sql STABLE AS $$
    SELECT * FROM project_documents v WHERE v.code = p_code ORDER BY v.res_code
$$;

-- Audit -------------------------------------------------------------------------

-- audit_record_hash() of 003 in two parts, so a writer can encode its record
-- before the chain's lock and only link it under the lock: the fields after
-- the id, length-prefixed, and the link of the previous hash, the id and
-- that tail. The bytes hashed are the same as before, so every record,
-- earlier ones included, verifies with the one definition below. Both parts
-- are single expressions the planner inlines (into audit_verify()'s loop
-- and audit_append()'s assignments).
CREATE FUNCTION audit_record_tail(p_at timestamptz, p_actor text, p_role text, p_addr text,
                                  p_rid text, p_action text, p_object text, p_summary text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT convert_to(
        format('%s:%s%s:%s%s:%s%s:%s%s:%s%s:%s%s:%s%s:%s',
               length(to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')),
               to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
               length(p_actor), p_actor, length(p_role), p_role, length(p_addr), p_addr,
               length(p_rid), p_rid, length(p_action), p_action, length(p_object), p_object,
               length(p_summary), p_summary), 'UTF8')
$$;

CREATE FUNCTION audit_record_link(p_prev bytea, p_id bigint, p_tail bytea)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(p_prev || convert_to(length(p_id::text)::text || ':' || p_id::text, 'UTF8')
                  || p_tail)
$$;

CREATE OR REPLACE FUNCTION audit_record_hash(p_prev bytea, p_id bigint, p_at timestamptz,
                                             p_actor text, p_role text, p_addr text,
                                             p_rid text, p_action text, p_object text,
                                             p_summary text)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT audit_record_link(p_prev, p_id, audit_record_tail(p_at, p_actor, p_role, p_addr,
                                                             p_rid, p_action, p_object,
                                                             p_summary))
$$;

-- The same record as before, encoded before the chain's lock; under the lock
-- only the previous hash, the id, the link and a plain insert. The lock is
-- held to commit, so the callers append last, after reading what they
-- answer with.
CREATE OR REPLACE FUNCTION audit_append(p_actor text, p_role text, p_addr text, p_rid text,
                                        p_action text, p_object text, p_summary text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_prev bytea;
    v_id bigint;
    v_at timestamptz := clock_timestamp();
    -- Each field cut once, for the row and its hash alike.
    v_actor text := left(p_actor, 256);
    v_role text := left(p_role, 256);
    v_addr text := left(p_addr, 64);
    v_rid text := left(p_rid, 64);
    v_action text := left(p_action, 64);
    v_object text := left(p_object, 256);
    v_summary text := left(p_summary, 2000);
    v_tail bytea := audit_record_tail(v_at, v_actor, v_role, v_addr, v_rid, v_action, v_object,
                                      v_summary);
BEGIN
    PERFORM pg_advisory_xact_lock(7305002);
    SELECT hash INTO v_prev FROM audit_log ORDER BY id DESC LIMIT 1;
    v_prev := coalesce(v_prev, decode(repeat('00', 32), 'hex'));
    v_id := nextval('audit_log_id_seq');
    INSERT INTO audit_log (id, at, actor, role, client_addr, request_id, action, object, summary,
                           prev_hash, hash)
    VALUES (v_id, v_at, v_actor, v_role, v_addr, v_rid, v_action, v_object, v_summary, v_prev,
            audit_record_link(v_prev, v_id, v_tail));
    RETURN v_id;
END
$$;

-- Checks ------------------------------------------------------------------------

-- A table's checks are prepared again for every statement that writes it.
-- This one joined text and an integer with ||, whose operator is a
-- SQL-language function that PostgreSQL inlines by parsing its body anew:
-- on every transition, the most expensive part of updating a project.
ALTER TABLE projects DROP CONSTRAINT projects_check1,
    ADD CONSTRAINT projects_code_parts
        CHECK (code = region || '-' || year::text || '-' || lpad(serial::text, 5, '0'));

-- Transitions -----------------------------------------------------------------

-- project_transition() of 004 with the same checks in the same order, now
-- answering with the project as it stands after the transition
-- (project_rows()), read before the audit record, so the chain's lock is
-- not held over a read-back.
DROP FUNCTION project_transition(text, text, integer, text, bigint, integer, text, text);
CREATE FUNCTION project_transition(p_code text, p_action text, p_version integer,
                                   p_reason text, p_amount_fen bigint, p_list_year integer,
                                   p_addr text, p_rid text)
RETURNS SETOF project_documents
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    p projects%ROWTYPE;
    a lifecycle_actions%ROWTYPE;
    v_actor text := current_setting('itpm.user_id', true);
    v_roles text[] := string_to_array(coalesce(current_setting('itpm.roles', true), ''), ',');
    v_role text;
    v_allowed text;
    v_writable boolean;
    v_missing text[];
    v_needed integer;
    v_scored integer;
    v_assigned integer;
    v_mean numeric;
    v_window boolean;
    v_t rules_thresholds%ROWTYPE;
    v_list_year integer;
    -- FOR UPDATE applies the update policy too: a caller who may change the
    -- project finds it locked (concurrent transitions of one project take
    -- turns, and every check below sees its latest version). The update
    -- goes through this cursor (WHERE CURRENT OF) and reads no column, so
    -- it is checked against the update policy only: the read policy holds
    -- already for the row fetched here.
    c_project CURSOR FOR SELECT * FROM projects WHERE code = p_code FOR UPDATE;
BEGIN
    OPEN c_project;
    FETCH c_project INTO p;
    v_writable := FOUND;
    IF NOT v_writable THEN
        -- Anyone else reads it without the lock, to tell 404 (not visible) from 403.
        CLOSE c_project;
        SELECT * INTO p FROM projects WHERE code = p_code;
        IF NOT FOUND THEN
            PERFORM itpm_refuse(404, 'not_found', 'no such project');
        END IF;
    END IF;
    SELECT * INTO a FROM lifecycle_actions l WHERE l.from_stage = p.stage AND l.action = p_action;
    IF FOUND THEN
        FOREACH v_allowed IN ARRAY a.roles LOOP
            IF v_allowed = ANY (v_roles) THEN
                v_role := v_allowed;
                EXIT;
            END IF;
        END LOOP;
    END IF;
    IF v_role IS NULL THEN
        -- Not possible here for this caller: a role that may never take this
        -- action, at any stage, gets 403; otherwise the stage is wrong.
        IF NOT EXISTS (SELECT 1 FROM lifecycle_actions l
                        WHERE l.action = p_action AND l.roles && v_roles) THEN
            IF NOT EXISTS (SELECT 1 FROM lifecycle_actions l WHERE l.action = p_action) THEN
                PERFORM itpm_refuse(422, 'unknown_action', 'no such action: ' || left(p_action, 40));
            END IF;
            PERFORM itpm_refuse(403, 'forbidden', 'your role may not ' || p_action);
        END IF;
    END IF;
    IF p.version <> p_version THEN
        PERFORM itpm_refuse(412, 'stale_version',
                            'the project changed since version ' || p_version);
    END IF;
    IF v_role IS NULL THEN
        PERFORM itpm_refuse(409, 'wrong_stage',
                            p_action || ' is not possible at stage ' || p.stage::text);
    END IF;
    IF a.needs_reason AND itpm_blank(p_reason) THEN
        PERFORM itpm_refuse(422, 'reason_required', p_action || ' needs a written reason');
    END IF;
    -- Read-only scope is not enough to act.
    IF NOT v_writable THEN
        PERFORM itpm_refuse(403, 'forbidden', 'this project is outside what you may change');
    END IF;

    IF p_action = 'submit' THEN
        -- The region's own window for the year, else the city's for that year.
        SELECT coalesce(
                 (SELECT current_date BETWEEN w.opens AND w.closes FROM rules_windows w
                   WHERE w.region = p.region AND w.year = p.year),
                 (SELECT current_date BETWEEN w.opens AND w.closes FROM rules_windows w
                    JOIN regions r ON r.code = w.region AND r.kind = 'city'
                   WHERE w.year = p.year),
                 false)
          INTO v_window;
        IF NOT v_window THEN
            IF NOT p.urgent THEN
                PERFORM itpm_refuse(409, 'window_closed',
                                    'the declaration window for ' || p.year || ' is not open');
            ELSIF itpm_blank(p.urgent_reason) THEN
                PERFORM itpm_refuse(409, 'urgent_reason_missing',
                                    'an urgent declaration outside the window needs a reason');
            END IF;
        END IF;
        v_missing := project_missing_materials(p.id, p.region, p.classified, 'submit');
        IF cardinality(v_missing) > 0 THEN
            PERFORM itpm_refuse(409, 'materials_missing',
                                'missing: ' || array_to_string(v_missing, ', '));
        END IF;
    ELSIF p_action = 'endorse' THEN
        IF current_setting('itpm.unit', true) IS DISTINCT FROM p.unit THEN
            PERFORM itpm_refuse(409, 'endorsement_unit_mismatch',
                                'only the chief data officer of ' || p.unit || ' endorses it');
        END IF;
    ELSIF p.stage = 'prereview' AND p_action = 'pass' THEN
        v_needed := project_required_experts(p.region, p.budget_requested_fen);
        IF v_needed > 0 THEN
            SELECT count(*), count(score), avg(score) INTO v_assigned, v_scored, v_mean
              FROM expert_assignments e WHERE e.project_id = p.id;
            SELECT * INTO v_t FROM rules_thresholds
             WHERE region = rules_region(p.region, 'rules_thresholds');
            IF v_assigned < v_needed OR v_scored < v_assigned THEN
                PERFORM itpm_refuse(409, 'experts_incomplete',
                                    v_scored || ' of ' || greatest(v_needed, v_assigned)
                                    || ' expert scores are in');
            END IF;
            IF v_mean < v_t.expert_min_mean THEN
                PERFORM itpm_refuse(409, 'expert_mean_low',
                                    'the mean expert score ' || round(v_mean, 2)
                                    || ' is below ' || v_t.expert_min_mean);
            END IF;
        END IF;
    ELSIF p.stage = 'budget_review' AND p_action = 'pass' THEN
        IF p_amount_fen IS NULL THEN
            PERFORM itpm_refuse(422, 'amount_required', 'pass at budget_review needs the approved amount');
        END IF;
        IF p_amount_fen > p.budget_requested_fen THEN
            PERFORM itpm_refuse(409, 'budget_exceeds_request',
                                'the approved amount is above the requested budget');
        END IF;
    ELSIF p.stage = 'pre_implementation' AND p_action = 'pass' THEN
        IF p.construction_mode = 'self-built' AND itpm_blank(p.exemption_reason) THEN
            PERFORM itpm_refuse(409, 'exemption_reason_missing',
                                'self-built construction needs an exemption reason');
        END IF;
        SELECT array_agg(u ORDER BY u) INTO v_missing
          FROM unnest(project_required_signoffs(p.region, p.budget_requested_fen,
                                                p.cross_department, p.classified)) u
         WHERE NOT EXISTS (SELECT 1 FROM signoffs s
                            WHERE s.project_id = p.id AND s.unit = u AND s.approved);
        IF cardinality(v_missing) > 0 THEN
            PERFORM itpm_refuse(409, 'signoffs_missing',
                                'missing sign-off of ' || array_to_string(v_missing, ', '));
        END IF;
    ELSIF p_action = 'request_acceptance' THEN
        SELECT * INTO v_t FROM rules_thresholds
         WHERE region = rules_region(p.region, 'rules_thresholds');
        IF p.stage_since > now() - make_interval(days => v_t.trial_days) THEN
            PERFORM itpm_refuse(409, 'trial_period_not_over',
                                'trial operation lasts at least ' || v_t.trial_days || ' days');
        END IF;
    ELSIF p_action = 'accept' THEN
        v_missing := project_missing_materials(p.id, p.region, p.classified, 'accept');
        IF cardinality(v_missing) > 0 THEN
            PERFORM itpm_refuse(409, 'materials_missing',
                                'missing: ' || array_to_string(v_missing, ', '));
        END IF;
        IF EXISTS (SELECT 1 FROM data_resources d WHERE d.project_id = p.id
                      AND NOT d.aggregated AND itpm_blank(d.exemption_reason)) THEN
            PERFORM itpm_refuse(409, 'data_not_aggregated',
                                'every declared data resource must be aggregated or exempted');
        END IF;
    ELSIF p_action = 'complete_filing' THEN
        IF NOT EXISTS (SELECT 1 FROM assets s WHERE s.project_id = p.id) THEN
            PERFORM itpm_refuse(409, 'assets_missing', 'register at least one asset first');
        END IF;
        v_missing := ARRAY(SELECT 'filing_document' WHERE NOT EXISTS (
            SELECT 1 FROM attachments t WHERE t.project_id = p.id AND t.kind = 'filing_document'));
        IF cardinality(v_missing) > 0 THEN
            PERFORM itpm_refuse(409, 'materials_missing', 'missing: filing_document');
        END IF;
    ELSIF p_action = 'force_exit' THEN
        IF NOT p.exit_candidate THEN
            PERFORM itpm_refuse(409, 'not_exit_candidate',
                                'the project is not marked an exit candidate');
        END IF;
    END IF;

    -- p is the locked row as it stands.
    v_list_year := CASE WHEN p_action = 'defer' THEN coalesce(p.list_year, p.year) + 1
                        WHEN p.stage = 'listing' AND p_action = 'pass'
                        THEN coalesce(p_list_year, p.list_year, p.year)
                        ELSE p.list_year END;
    UPDATE projects SET
        stage = a.to_stage,
        version = p.version + 1,
        stage_since = CASE WHEN a.to_stage <> p.stage THEN now() ELSE p.stage_since END,
        updated_at = now(),
        budget_approved_fen = CASE WHEN p.stage = 'budget_review' AND p_action = 'pass'
                                   THEN p_amount_fen ELSE p.budget_approved_fen END,
        list_year = v_list_year,
        return_reason = CASE WHEN p_action = 'return' THEN p_reason ELSE p.return_reason END
     WHERE CURRENT OF c_project;
    -- The cursor's name is fixed: closed, it is free for the next call in
    -- this transaction.
    CLOSE c_project;
    IF p_action NOT IN ('defer', 'pass') OR p.stage <> 'listing' THEN
        v_list_year := p_list_year;
    END IF;
    INSERT INTO project_events (project_id, actor, role, action, from_stage, to_stage, reason,
                                amount_fen, list_year)
    VALUES (p.id, v_actor, v_role, p_action, p.stage, a.to_stage, coalesce(p_reason, ''),
            p_amount_fen, v_list_year);
    -- The project as it now stands, read before the audit record: from
    -- audit_append() on, every audited write in the database waits for this
    -- transaction to commit.
    RETURN QUERY SELECT * FROM project_rows(p.code);
    PERFORM audit_append(v_actor, v_role, p_addr, p_rid, 'transition:' || p_action,
                         'project:' || p.code,
                         p.stage::text || ' -> ' || a.to_stage::text || ' version ' || p.version
                         || ' -> ' || (p.version + 1)
                         || coalesce(' amount_fen=' || p_amount_fen, '')
                         || coalesce(' list_year=' || v_list_year, ''));
END
$$;

-- Declarations ------------------------------------------------------------------

-- project_create() and project_update() of 004, the same rules in the same
-- order, answering like a transition with the project as it now stands,
-- read before the audit record.
DROP FUNCTION project_create(text, integer, text, text, boolean, boolean, boolean, boolean,
                             boolean, boolean, boolean, text, bigint, text, text, text, date,
                             date, text, text, text, text, text[], text[], text[], text[],
                             text[], boolean[], text, text);
DROP FUNCTION project_update(text, integer, text, integer, text, boolean, boolean, boolean,
                             boolean, boolean, boolean, boolean, text, bigint, text, text, text,
                             date, date, text, text, text, text, text, text[], text[], text[],
                             text[], text[], boolean[], text, text);

-- The data resources a declaration lists (parallel arrays, one element per
-- resource), stored as rows of its project, in the caller's scope.
CREATE FUNCTION data_resources_add(p_project bigint, p_code text[], p_name text[],
                                   p_source text[], p_share text[], p_frequency text[],
                                   p_aggregated boolean[])
RETURNS void LANGUAGE sql AS $$
    INSERT INTO data_resources (project_id, code, name, source, share, frequency, aggregated)
    SELECT p_project, r.c, r.n, r.s, r.sh, r.f, r.a
      FROM unnest(p_code, p_name, p_source, p_share, p_frequency, p_aggregated)
           AS r (c, n, s, sh, f, a)
$$;

-- Creates a project with its data resources. The serial comes from the
-- region-year counter row, locked until commit: codes have no gaps and no
-- duplicates however many are created at once. An existing system declared
-- by a reviewer or county admin enters at operation; everything else is a
-- draft of its unit.
CREATE FUNCTION project_create(p_unit text, p_year integer, p_title text, p_category text,
                               p_classified boolean, p_soe boolean, p_public boolean,
                               p_cross boolean, p_vertical boolean, p_key boolean,
                               p_urgent boolean, p_urgent_reason text, p_budget_fen bigint,
                               p_funding text, p_mode text, p_exemption text, p_start date,
                               p_end date, p_contact_name text, p_contact_phone text,
                               p_contact_email text, p_summary text,
                               p_res_code text[], p_res_name text[], p_res_source text[],
                               p_res_share text[], p_res_frequency text[],
                               p_res_aggregated boolean[], p_addr text, p_rid text)
RETURNS SETOF project_documents
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_region text;
    v_serial integer;
    v_code text;
    v_id bigint;
    v_actor text := current_setting('itpm.user_id', true);
    v_stage project_stage := 'draft';
    v_role text := 'submitter';
BEGIN
    SELECT region INTO v_region FROM units WHERE units.code = p_unit;
    IF v_region IS NULL THEN
        PERFORM itpm_refuse(422, 'unknown_unit', 'no such unit: ' || p_unit);
    END IF;
    IF p_category = 'existing' AND (itpm_has_role('reviewer') OR itpm_has_role('county_admin')) THEN
        v_stage := 'operation';
        v_role := CASE WHEN itpm_has_role('reviewer') THEN 'reviewer' ELSE 'county_admin' END;
    ELSIF NOT itpm_has_role('submitter') THEN
        PERFORM itpm_refuse(403, 'forbidden',
                            'only a submitter declares; reviewers and county admins register existing systems');
    END IF;
    IF NOT itpm_project_writable(v_region, p_unit, p_classified)
       OR (v_role = 'submitter' AND current_setting('itpm.unit', true) <> p_unit) THEN
        PERFORM itpm_refuse(403, 'forbidden', 'you may not declare for ' || p_unit);
    END IF;
    INSERT INTO project_serials AS s (region, year, last_serial) VALUES (v_region, p_year, 1)
    ON CONFLICT (region, year) DO UPDATE SET last_serial = s.last_serial + 1
    RETURNING s.last_serial INTO v_serial;
    v_code := v_region || '-' || p_year || '-' || lpad(v_serial::text, 5, '0');
    INSERT INTO projects (code, region, unit, year, serial, title, category, stage, classified,
                          soe, public_institution, cross_department, vertical, key_project,
                          urgent, urgent_reason, budget_requested_fen, funding, construction_mode,
                          exemption_reason, schedule_start, schedule_end, contact_name,
                          contact_phone, contact_email, summary, created_by)
    VALUES (v_code, v_region, p_unit, p_year, v_serial, p_title, p_category::project_category,
            v_stage, p_classified, p_soe, p_public, p_cross, p_vertical, p_key, p_urgent,
            coalesce(p_urgent_reason, ''), p_budget_fen, p_funding, p_mode,
            coalesce(p_exemption, ''), p_start, p_end, coalesce(p_contact_name, ''),
            coalesce(p_contact_phone, ''), coalesce(p_contact_email, ''),
            coalesce(p_summary, ''), v_actor)
    RETURNING id INTO v_id;
    PERFORM data_resources_add(v_id, p_res_code, p_res_name, p_res_source, p_res_share,
                               p_res_frequency, p_res_aggregated);
    INSERT INTO project_events (project_id, actor, role, action, from_stage, to_stage)
    VALUES (v_id, v_actor, v_role, 'create', NULL, v_stage);
    RETURN QUERY SELECT * FROM project_rows(v_code);
    PERFORM audit_append(v_actor, v_role, p_addr, p_rid, 'create', 'project:' || v_code,
                         'category=' || p_category || ' unit=' || p_unit || ' stage='
                         || v_stage::text || ' budget_fen=' || p_budget_fen);
END
$$;

-- Replaces a draft's declaration (data resources included) when the caller
-- holds its current version.
CREATE FUNCTION project_update(p_code text, p_version integer, p_title text, p_year integer,
                               p_category text, p_classified boolean, p_soe boolean,
                               p_public boolean, p_cross boolean, p_vertical boolean,
                               p_key boolean, p_urgent boolean, p_urgent_reason text,
                               p_budget_fen bigint, p_funding text, p_mode text,
                               p_exemption text, p_start date, p_end date,
                               p_contact_name text, p_contact_phone text, p_contact_email text,
                               p_summary text, p_unit text,
                               p_res_code text[], p_res_name text[], p_res_source text[],
                               p_res_share text[], p_res_frequency text[],
                               p_res_aggregated boolean[], p_addr text, p_rid text)
RETURNS SETOF project_documents
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    p projects%ROWTYPE;
    v_actor text := current_setting('itpm.user_id', true);
BEGIN
    SELECT * INTO p FROM projects WHERE projects.code = p_code;
    IF NOT FOUND THEN
        PERFORM itpm_refuse(404, 'not_found', 'no such project');
    END IF;
    IF NOT itpm_has_role('submitter') OR NOT itpm_project_writable(p.region, p.unit, p.classified)
       OR current_setting('itpm.unit', true) <> p.unit THEN
        PERFORM itpm_refuse(403, 'forbidden', 'only the declaring unit updates its draft');
    END IF;
    SELECT * INTO p FROM projects WHERE id = p.id FOR UPDATE;
    IF p.version <> p_version THEN
        PERFORM itpm_refuse(412, 'stale_version', 'the project changed since version ' || p_version);
    END IF;
    IF p.stage <> 'draft' THEN
        PERFORM itpm_refuse(409, 'wrong_stage', 'only a draft can be changed');
    END IF;
    IF p_unit <> p.unit OR p_year <> p.year THEN
        PERFORM itpm_refuse(422, 'immutable_field', 'unit and year are fixed by the project code');
    END IF;
    UPDATE projects AS t SET title = p_title, category = p_category::project_category,
           classified = p_classified, soe = p_soe, public_institution = p_public,
           cross_department = p_cross, vertical = p_vertical, key_project = p_key,
           urgent = p_urgent, urgent_reason = coalesce(p_urgent_reason, ''),
           budget_requested_fen = p_budget_fen, funding = p_funding, construction_mode = p_mode,
           exemption_reason = coalesce(p_exemption, ''), schedule_start = p_start,
           schedule_end = p_end, contact_name = coalesce(p_contact_name, ''),
           contact_phone = coalesce(p_contact_phone, ''),
           contact_email = coalesce(p_contact_email, ''), summary = coalesce(p_summary, ''),
           version = t.version + 1, updated_at = now()
     WHERE t.id = p.id;
    DELETE FROM data_resources WHERE project_id = p.id;
    PERFORM data_resources_add(p.id, p_res_code, p_res_name, p_res_source, p_res_share,
                               p_res_frequency, p_res_aggregated);
    RETURN QUERY SELECT * FROM project_rows(p.code);
    PERFORM audit_append(v_actor, 'submitter', p_addr, p_rid, 'update', 'project:' || p.code,
                         'version ' || p.version || ' -> ' || (p.version + 1));
END
$$;
