-- The transition's own costs, measured per call in PostgreSQL (pgbench,
-- one client, backend CPU; pg_stat_statements for the split) and under the
-- lifecycle benchmark's load.

-- audit_append() of 007, shorter under the chain's lock (held to the commit,
-- so every audited write in the database waits for the holder): the
-- previous hash is read by the insert itself (one statement less), and the
-- time index is a BRIN range index (records are only ever appended, in time
-- order: a summary per range of pages instead of a B-tree entry per record
-- written under the lock; GET /api/v1/audit filters by time through it).
-- It keeps its SET search_path: without it a caller could shadow even the
-- types of its variables with ones of its own temporary schema (which is
-- searched for types, before pg_catalog, unless named), whose checks would
-- then run as the owner.
DROP INDEX audit_log_at;
CREATE INDEX audit_log_at ON audit_log USING brin (at) WITH (autosummarize = on);

CREATE OR REPLACE FUNCTION audit_append(p_actor text, p_role text, p_addr text, p_rid text,
                                        p_action text, p_object text, p_summary text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
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
    INSERT INTO audit_log (id, at, actor, role, client_addr, request_id, action, object, summary,
                           prev_hash, hash)
    SELECT x.id, v_at, v_actor, v_role, v_addr, v_rid, v_action, v_object, v_summary, x.prev,
           audit_record_link(x.prev, x.id, v_tail)
      FROM (SELECT nextval('audit_log_id_seq') AS id,
                   coalesce((SELECT l.hash FROM audit_log l ORDER BY l.id DESC LIMIT 1),
                            decode(repeat('00', 32), 'hex')) AS prev) x
    RETURNING id INTO v_id;
    RETURN v_id;
END
$$;

-- project_transition() of 007 with the same checks in the same order, and
-- two costs less:
-- - it answers with the row its update returns (the columns of
--   project_documents, as project_rows() would read them back) instead of a
--   read of the project after the update: one statement, with its plan
--   start and its pass of the read policy, less;
-- - it runs as the owner, for whom the policy of project_events is not
--   forced: the event it writes is of the project it has just locked and
--   updated through the policies of projects (forced on the owner too, with
--   the caller's settings), so asking the event's policy whether that project
--   is visible was a second lookup of the project, with its policy, per
--   transition. itpm_app's own use of project_events keeps the policy.
-- Both this and the view a project is read through (007) rely on the
-- owner being held to the policies: a superuser or a role with BYPASSRLS
-- skips even forced ones. Migrations run as the schema's owner.
DO $$
BEGIN
    IF (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'run the migrations as the schema owner, not as % (superuser or BYPASSRLS: '
                        'row-level security would not hold for the owner''s functions)', current_user;
    END IF;
END
$$;
ALTER TABLE project_events NO FORCE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION project_transition(p_code text, p_action text, p_version integer,
                                   p_reason text, p_amount_fen bigint, p_list_year integer,
                                   p_addr text, p_rid text)
RETURNS SETOF project_documents
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
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
    v_doc project_documents;
    -- FOR UPDATE applies the update policy too: a caller who may change the
    -- project finds it locked (concurrent transitions of one project take
    -- turns, and every check below sees its latest version). The update
    -- goes through this cursor (WHERE CURRENT OF); its RETURNING holds the
    -- new row to the read policy as well, as reading it back did.
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
     WHERE CURRENT OF c_project
    RETURNING code, version, stage, title, unit, year, category, classified, soe,
              public_institution, cross_department, vertical, key_project, urgent, urgent_reason,
              budget_requested_fen, funding, construction_mode, exemption_reason, schedule_start,
              schedule_end, contact_name, contact_phone, contact_email, summary, region,
              budget_approved_fen, list_year, return_reason,
              to_char(stage_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
              to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
              to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
              id, NULL, NULL, NULL, NULL, NULL, NULL, resources
         INTO v_doc;
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
    -- The project as it now stands (the row the update returned, as
    -- project_rows() reads it), answered before the audit record: from
    -- audit_append() on, every audited write in the database waits for this
    -- transaction to commit.
    RETURN NEXT v_doc;
    PERFORM audit_append(v_actor, v_role, p_addr, p_rid, 'transition:' || p_action,
                         'project:' || p.code,
                         p.stage::text || ' -> ' || a.to_stage::text || ' version ' || p.version
                         || ' -> ' || (p.version + 1)
                         || coalesce(' amount_fen=' || p_amount_fen, '')
                         || coalesce(' list_year=' || v_list_year, ''));
END
$$;
REVOKE ALL ON FUNCTION project_transition(text, text, integer, text, bigint, integer, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION project_transition(text, text, integer, text, bigint, integer, text,
                                             text) TO itpm_app;
