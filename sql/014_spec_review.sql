-- Two rules read again against SPEC section 4.
--
-- `reject` takes a reason when one is given but does not demand one: the
-- specification asks a written reason of `return` (which the unit must act
-- on) and of `force_exit`, not of a rejection.
--
-- `prereview` passes only when every assigned expert has scored and their
-- mean is at least the threshold's minimum, also when the budget asked for
-- no experts and a reviewer drew some anyway (before, the scores of such
-- experts were not looked at). project_transition_check() of 012 with that
-- one block changed.

UPDATE lifecycle_actions SET needs_reason = false WHERE action = 'reject';

CREATE OR REPLACE FUNCTION project_transition_check(p_code text, p_action text, p_version integer,
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
            -- Every assigned expert counts, whether or not the budget
            -- asked for any.
            v_needed := project_required_experts(p.region, p.budget_requested_fen);
            SELECT count(*), count(score), avg(score) INTO v_assigned, v_scored, v_mean
              FROM expert_assignments e WHERE e.project_id = p.id;
            IF v_assigned < v_needed OR v_scored < v_assigned THEN
                PERFORM itpm_refuse(409, 'experts_incomplete',
                                    v_scored || ' of ' || greatest(v_needed, v_assigned)
                                    || ' expert scores are in');
            END IF;
            IF v_assigned > 0 THEN
                SELECT * INTO v_t FROM rules_thresholds
                 WHERE region = rules_region(p.region, 'rules_thresholds');
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
