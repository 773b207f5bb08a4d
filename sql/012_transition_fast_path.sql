-- The transition's common case in one statement.
--
-- Measured per transition with callgrind on one backend (instructions, the
-- daemon's exact pipeline, 011 in place): reading the project under its
-- lock, looking up the action, some thirty PL/pgSQL expressions (each set
-- up anew in every transaction) and the update through the cursor cost more
-- than the update itself. project_transition() now first tries one UPDATE
-- joined to the action's lifecycle row, whose WHERE holds what an action
-- without a gate of its own needs (every defer, return, withdraw, reject,
-- approve, start_trial and retire, and pass at registration and listing):
-- the caller has one of its roles, the version is the one given, a reason
-- is there where one is needed, and (through the policies of projects) the
-- project is in the caller's write scope. When that changes nothing,
-- project_transition_check() runs the checks in their order under the
-- project's lock, which refuse with the reason, or pass a gated action, and
-- the same UPDATE applies it. 1.63 M instructions per transition before,
-- 1.35 M after.

-- Whether an action has a gate of its own (project_transition() runs its
-- gate checks only for these; an action marked false never reaches them,
-- so a new gate must be marked here to run at all).
ALTER TABLE lifecycle_actions ADD COLUMN gated boolean NOT NULL DEFAULT false;
UPDATE lifecycle_actions SET gated = true
 WHERE action IN ('submit', 'endorse', 'request_acceptance', 'accept', 'complete_filing',
                  'force_exit')
    OR (action = 'pass' AND from_stage IN ('prereview', 'budget_review', 'pre_implementation'));

-- The checks of a transition, in their order, for one the update in
-- project_transition() did not apply: refuses with the first that fails,
-- else returns with the project locked (FOR UPDATE applies the update
-- policy too, so a caller who may change it finds it locked; concurrent
-- transitions of one project take turns). Runs as the owner, called by
-- project_transition() only; the policies of projects are forced on it.
CREATE FUNCTION project_transition_check(p_code text, p_action text, p_version integer,
                                         p_reason text, p_amount_fen bigint, p_roles text[])
RETURNS void LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    p projects%ROWTYPE;
    a record;
    v_has_role boolean;
    v_writable boolean;
    v_missing text[];
    v_needed integer;
    v_scored integer;
    v_assigned integer;
    v_mean numeric;
    v_window boolean;
    v_t rules_thresholds%ROWTYPE;
BEGIN
    SELECT * INTO p FROM projects WHERE code = p_code FOR UPDATE;
    v_writable := FOUND;
    IF NOT v_writable THEN
        -- Anyone else reads it without the lock, to tell 404 (not visible) from 403.
        SELECT * INTO p FROM projects WHERE code = p_code;
        IF NOT FOUND THEN
            PERFORM itpm_refuse(404, 'not_found', 'no such project');
        END IF;
    END IF;
    SELECT l.needs_reason, l.gated, l.roles && p_roles AS has_role
      INTO a
      FROM lifecycle_actions l WHERE l.from_stage = p.stage AND l.action = p_action;
    v_has_role := coalesce(a.has_role, false);
    IF NOT v_has_role THEN
        -- Not possible here for this caller: a role that may never take this
        -- action, at any stage, gets 403; otherwise the stage is wrong.
        IF NOT EXISTS (SELECT 1 FROM lifecycle_actions l
                        WHERE l.action = p_action AND l.roles && p_roles) THEN
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
    IF NOT v_has_role THEN
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

    IF a.gated THEN
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
    END IF;
END
$$;
REVOKE ALL ON FUNCTION project_transition_check(text, text, integer, text, bigint, text[])
    FROM PUBLIC;

CREATE OR REPLACE FUNCTION project_transition(p_code text, p_action text, p_version integer,
                                   p_reason text, p_amount_fen bigint, p_list_year integer,
                                   p_addr text, p_rid text)
RETURNS SETOF project_documents
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    v_actor text := current_setting('itpm.user_id', true);
    v_roles text[] := string_to_array(coalesce(current_setting('itpm.roles', true), ''), ',');
    v_role text;
    v_allowed text;
    v_checked boolean := false;
    v_audit bigint;
    f record;
BEGIN
    LOOP
        -- Finds, locks and changes the project in one statement when nothing
        -- can refuse (the policies of projects hold it to the caller's
        -- scope); a concurrent change of it is seen after the lock, as a
        -- version that no longer matches. A gated action is applied only
        -- once its checks have passed.
        UPDATE projects p
           SET stage = a.to_stage, version = p.version + 1,
               stage_since = CASE WHEN a.to_stage <> a.from_stage THEN now()
                                  ELSE p.stage_since END,
               updated_at = now(),
               budget_approved_fen = CASE WHEN a.from_stage = 'budget_review' AND p_action = 'pass'
                                          THEN p_amount_fen ELSE p.budget_approved_fen END,
               list_year = CASE WHEN p_action = 'defer' THEN coalesce(p.list_year, p.year) + 1
                                WHEN a.from_stage = 'listing' AND p_action = 'pass'
                                THEN coalesce(p_list_year, p.list_year, p.year)
                                ELSE p.list_year END,
               return_reason = CASE WHEN p_action = 'return' THEN p_reason
                                    ELSE p.return_reason END
          FROM lifecycle_actions a
         WHERE p.code = p_code AND p.version = p_version
           AND a.from_stage = p.stage AND a.action = p_action AND (v_checked OR NOT a.gated)
           AND a.roles && v_roles AND NOT (a.needs_reason AND itpm_blank(p_reason))
        RETURNING ROW(p.code, p.version, p.stage, p.title, p.unit, p.year, p.category,
                      p.classified, p.soe, p.public_institution, p.cross_department, p.vertical,
                      p.key_project, p.urgent, p.urgent_reason, p.budget_requested_fen, p.funding,
                      p.construction_mode, p.exemption_reason, p.schedule_start, p.schedule_end,
                      p.contact_name, p.contact_phone, p.contact_email, p.summary, p.region,
                      p.budget_approved_fen, p.list_year, p.return_reason,
                      to_char(p.stage_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                      to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                      to_char(p.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                      p.id, NULL, NULL, NULL, NULL, NULL, NULL, p.resources)::project_documents
                  AS doc,
                  a.from_stage, a.roles
          INTO f;
        EXIT WHEN FOUND;
        IF v_checked THEN
            -- The checks passed with the project locked: the update cannot miss it.
            RAISE EXCEPTION 'transition % of % passed its checks but changed nothing',
                            p_action, p_code;
        END IF;
        PERFORM project_transition_check(p_code, p_action, p_version, p_reason, p_amount_fen,
                                         v_roles);
        v_checked := true;
    END LOOP;
    -- The first of the action's roles the caller has.
    FOREACH v_allowed IN ARRAY f.roles LOOP
        IF v_allowed = ANY (v_roles) THEN
            v_role := v_allowed;
            EXIT;
        END IF;
    END LOOP;
    INSERT INTO project_events (project_id, actor, role, action, from_stage, to_stage, reason,
                                amount_fen, list_year)
    VALUES ((f.doc).id, v_actor, v_role, p_action, f.from_stage, (f.doc).stage,
            coalesce(p_reason, ''), p_amount_fen,
            CASE WHEN p_action IN ('defer', 'pass') AND f.from_stage = 'listing'
                 THEN (f.doc).list_year ELSE p_list_year END);
    -- Answered before the audit record: from audit_append() on, every
    -- audited write in the database waits for this transaction to commit.
    RETURN NEXT f.doc;
    v_audit := audit_append(v_actor, v_role, p_addr, p_rid, 'transition:' || p_action,
                            'project:' || p_code,
                            f.from_stage::text || ' -> ' || (f.doc).stage::text || ' version '
                            || p_version || ' -> ' || (f.doc).version
                            || coalesce(' amount_fen=' || p_amount_fen, '')
                            || coalesce(' list_year=' || (f.doc).list_year, ''));
END
$$;

REVOKE ALL ON FUNCTION project_transition(text, text, integer, text, bigint, integer, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION project_transition(text, text, integer, text, bigint, integer, text,
                                             text) TO itpm_app;
