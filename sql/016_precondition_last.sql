-- Two answers read again against SPEC sections 4 and 5.
--
-- A transition or an update without If-Match was refused with 428 before
-- anything else was asked, so a role that may never act, a project out of
-- scope or one at the wrong stage were all told 428 instead of 403, 404 or
-- 409. The daemon now passes a missing If-Match as no version, and the
-- functions ask for it (428) where they compare versions (412): after the
-- project is found in scope and the caller's role may take the action at
-- all, before the stage and the gates.
--
-- An event and its audit record kept the amount and the list year the
-- caller sent with any action, also where the action applied neither (a
-- `pass` at registration with an amount): history now holds what was
-- applied, the approved amount of budget_review's `pass` and the list year
-- of listing's `pass` and `defer`.
--
-- An update's audit record said only "version 1 -> 2": it now names what
-- changed, before -> after (long texts by name only), as SPEC asks of
-- every audit record (project_changes()).
--
-- project_transition() of 012 and project_update() of 007 restated with
-- those changes only.

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

REVOKE ALL ON FUNCTION project_transition(text, text, integer, text, bigint, integer, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION project_transition(text, text, integer, text, bigint, integer, text,
                                             text) TO itpm_app;

-- What an update changed, field by field, before -> after, for its audit
-- record (SPEC: a before/after summary). Long texts are named, not copied.
CREATE FUNCTION project_changes(p projects, p_title text, p_category text, p_classified boolean,
                                p_soe boolean, p_public boolean, p_cross boolean,
                                p_vertical boolean, p_key boolean, p_urgent boolean,
                                p_urgent_reason text, p_budget_fen bigint, p_funding text,
                                p_mode text, p_exemption text, p_start date, p_end date,
                                p_contact_name text, p_contact_phone text, p_contact_email text,
                                p_summary text, p_res_code text[], p_res_name text[],
                                p_res_source text[], p_res_share text[], p_res_frequency text[],
                                p_res_aggregated boolean[])
RETURNS text LANGUAGE sql STABLE AS $$
    -- One row per field: whether it changed, and its values when they are
    -- short enough to repeat (a label alone otherwise).
    SELECT string_agg(c.label || coalesce(': ' || c.was || ' -> ' || c.now, ''), '; '
                      ORDER BY c.ord)
      FROM (VALUES
        (1, 'title', p.title IS DISTINCT FROM p_title, p.title, p_title),
        (2, 'category', p.category::text IS DISTINCT FROM p_category, p.category::text,
         p_category),
        (3, 'classified', p.classified IS DISTINCT FROM p_classified, p.classified::text,
         p_classified::text),
        (4, 'soe', p.soe IS DISTINCT FROM p_soe, p.soe::text, p_soe::text),
        (5, 'public_institution', p.public_institution IS DISTINCT FROM p_public,
         p.public_institution::text, p_public::text),
        (6, 'cross_department', p.cross_department IS DISTINCT FROM p_cross,
         p.cross_department::text, p_cross::text),
        (7, 'vertical', p.vertical IS DISTINCT FROM p_vertical, p.vertical::text,
         p_vertical::text),
        (8, 'key', p.key_project IS DISTINCT FROM p_key, p.key_project::text, p_key::text),
        (9, 'urgent', p.urgent IS DISTINCT FROM p_urgent, p.urgent::text, p_urgent::text),
        (10, 'urgent_reason changed',
         p.urgent_reason IS DISTINCT FROM coalesce(p_urgent_reason, ''), NULL, NULL),
        (11, 'budget_fen', p.budget_requested_fen IS DISTINCT FROM p_budget_fen,
         p.budget_requested_fen::text, p_budget_fen::text),
        (12, 'funding', p.funding IS DISTINCT FROM p_funding, p.funding, p_funding),
        (13, 'construction', p.construction_mode IS DISTINCT FROM p_mode, p.construction_mode,
         p_mode),
        (14, 'exemption_reason changed',
         p.exemption_reason IS DISTINCT FROM coalesce(p_exemption, ''), NULL, NULL),
        (15, 'schedule',
         p.schedule_start IS DISTINCT FROM p_start OR p.schedule_end IS DISTINCT FROM p_end,
         coalesce(p.schedule_start || '..' || p.schedule_end, 'none'),
         coalesce(p_start || '..' || p_end, 'none')),
        (16, 'contact changed',
         (p.contact_name, p.contact_phone, p.contact_email) IS DISTINCT FROM
         (coalesce(p_contact_name, ''), coalesce(p_contact_phone, ''),
          coalesce(p_contact_email, '')), NULL, NULL),
        (17, 'summary changed', p.summary IS DISTINCT FROM coalesce(p_summary, ''), NULL, NULL),
        -- The resources as 009 keeps their text on the project, every
        -- field compared; their counts shown.
        (18, 'data_resources changed',
         p.resources IS DISTINCT FROM
         (SELECT string_agg(data_resource_record(r.c, r.n, r.s, r.sh, r.f, r.a), chr(30)
                            ORDER BY r.c COLLATE "C")
            FROM unnest(p_res_code, p_res_name, p_res_source, p_res_share, p_res_frequency,
                        p_res_aggregated) AS r (c, n, s, sh, f, a)),
         (SELECT count(*) FROM data_resources d WHERE d.project_id = p.id)::text,
         coalesce(cardinality(p_res_code), 0)::text)
      ) AS c (ord, label, changed, was, now)
     WHERE c.changed
$$;
REVOKE ALL ON FUNCTION project_changes(projects, text, text, boolean, boolean, boolean, boolean,
                                       boolean, boolean, boolean, text, bigint, text, text, text,
                                       date, date, text, text, text, text, text[], text[], text[],
                                       text[], text[], boolean[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION project_changes(projects, text, text, boolean, boolean, boolean,
                                          boolean, boolean, boolean, boolean, text, bigint, text,
                                          text, text, date, date, text, text, text, text, text[],
                                          text[], text[], text[], text[], boolean[]) TO itpm_app;

CREATE OR REPLACE FUNCTION project_update(p_code text, p_version integer, p_title text, p_year integer,
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
    v_changes text;
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
    IF p_version IS NULL THEN
        PERFORM itpm_refuse(428, 'precondition_required',
                            'an update needs If-Match with the project''s current ETag');
    END IF;
    IF p.version <> p_version THEN
        PERFORM itpm_refuse(412, 'stale_version', 'the project changed since version ' || p_version);
    END IF;
    IF p.stage <> 'draft' THEN
        PERFORM itpm_refuse(409, 'wrong_stage', 'only a draft can be changed');
    END IF;
    IF p_unit <> p.unit OR p_year <> p.year THEN
        PERFORM itpm_refuse(422, 'immutable_field', 'unit and year are fixed by the project code');
    END IF;
    -- Before the rows change: what is compared is what they were.
    v_changes := project_changes(p, p_title, p_category, p_classified, p_soe, p_public, p_cross,
                                 p_vertical, p_key, p_urgent, p_urgent_reason, p_budget_fen,
                                 p_funding, p_mode, p_exemption, p_start, p_end, p_contact_name,
                                 p_contact_phone, p_contact_email, p_summary, p_res_code,
                                 p_res_name, p_res_source, p_res_share, p_res_frequency,
                                 p_res_aggregated);
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
                         concat_ws('; ', 'version ' || p.version || ' -> ' || (p.version + 1),
                                   v_changes));
END
$$;
