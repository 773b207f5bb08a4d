-- What a return to draft leaves behind, and the list year checked.
--
-- A `return` took a project back to draft with the approved budget, the list
-- year and (later) the return reason of its earlier review still on it: the
-- unit, told to cut its budget below the old approved amount, could not save
-- the draft (the row's check that approval is at most the request refused
-- it, as a 409 naming no rule), and the new review started from figures
-- nobody had decided for the new declaration. Going back to draft now
-- clears the approved budget and the list year (the events keep them); the
-- return reason is shown until the unit acts again.
--
-- `pass` at listing took any list year, also one before the project's own
-- year: now 422.
--
-- project_transition() of 016 restated with those changes only.

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
    v_amount bigint;
    v_year integer;
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
                                          THEN p_amount_fen
                                          WHEN a.to_stage = 'draft' THEN NULL
                                          ELSE p.budget_approved_fen END,
               list_year = CASE WHEN a.to_stage = 'draft' THEN NULL
                                WHEN p_action = 'defer' THEN coalesce(p.list_year, p.year) + 1
                                WHEN a.from_stage = 'listing' AND p_action = 'pass'
                                THEN coalesce(p_list_year, p.list_year, p.year)
                                ELSE p.list_year END,
               return_reason = CASE WHEN p_action = 'return' THEN p_reason ELSE '' END
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
        IF p_version IS NULL THEN
            -- Version 0 is no project's: the check refuses, at the latest
            -- where it compares versions, and there the refusal is 428.
            BEGIN
                PERFORM project_transition_check(p_code, p_action, 0, p_reason, p_amount_fen,
                                                 v_roles);
            EXCEPTION WHEN SQLSTATE 'IT412' THEN
                PERFORM itpm_refuse(428, 'precondition_required',
                                    'a transition needs If-Match with the project''s current ETag');
            END;
        END IF;
        PERFORM project_transition_check(p_code, p_action, p_version, p_reason, p_amount_fen,
                                         v_roles);
        v_checked := true;
    END LOOP;
    -- Refused only now, when nothing else refuses it (the statement's
    -- error takes the update back with it).
    IF p_action = 'pass' AND f.from_stage = 'listing' AND p_list_year < (f.doc).year THEN
        PERFORM itpm_refuse(422, 'list_year_before_project',
                            'a project of ' || (f.doc).year || ' cannot be listed in '
                            || p_list_year);
    END IF;
    -- The first of the action's roles the caller has.
    FOREACH v_allowed IN ARRAY f.roles LOOP
        IF v_allowed = ANY (v_roles) THEN
            v_role := v_allowed;
            EXIT;
        END IF;
    END LOOP;
    -- Only what the action applied: an amount or a year sent with another
    -- action changed nothing and is not history.
    v_amount := CASE WHEN f.from_stage = 'budget_review' AND p_action = 'pass'
                     THEN p_amount_fen END;
    v_year := CASE WHEN p_action IN ('defer', 'pass') AND f.from_stage = 'listing'
                   THEN (f.doc).list_year END;
    INSERT INTO project_events (project_id, actor, role, action, from_stage, to_stage, reason,
                                amount_fen, list_year)
    VALUES ((f.doc).id, v_actor, v_role, p_action, f.from_stage, (f.doc).stage,
            coalesce(p_reason, ''), v_amount, v_year);
    -- Answered before the audit record: from audit_append() on, every
    -- audited write in the database waits for this transaction to commit.
    RETURN NEXT f.doc;
    v_audit := audit_append(v_actor, v_role, p_addr, p_rid, 'transition:' || p_action,
                            'project:' || p_code,
                            f.from_stage::text || ' -> ' || (f.doc).stage::text || ' version '
                            || p_version || ' -> ' || (f.doc).version
                            || coalesce(' amount_fen=' || v_amount, '')
                            || coalesce(' list_year=' || v_year, ''));
END
$$;
