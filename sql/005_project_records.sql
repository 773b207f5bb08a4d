-- Sub-records of a project (attachments, experts, sign-offs) and the
-- administration of the per-region rules, each write with its audit record.

-- Attachments: any stage but the terminal ones, by the unit (submitter) or a
-- reviewer in scope.
CREATE FUNCTION attachment_add(p_code text, p_kind text, p_filename text, p_type text,
                               p_size bigint, p_sha256 text, p_content bytea, p_addr text,
                               p_rid text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    p projects%ROWTYPE;
    v_id bigint;
    v_actor text := current_setting('itpm.user_id', true);
BEGIN
    SELECT * INTO p FROM projects WHERE code = p_code;
    IF NOT FOUND THEN
        PERFORM itpm_refuse(404, 'not_found', 'no such project');
    END IF;
    IF NOT (itpm_has_role('submitter') OR itpm_has_role('reviewer'))
       OR NOT itpm_project_writable(p.region, p.unit, p.classified) THEN
        PERFORM itpm_refuse(403, 'forbidden', 'you may not attach files to this project');
    END IF;
    IF p.stage IN ('retired', 'rejected') THEN
        PERFORM itpm_refuse(409, 'wrong_stage', 'the project is closed');
    END IF;
    INSERT INTO attachments (project_id, kind, filename, content_type, size, sha256, content,
                             uploaded_by)
    VALUES (p.id, p_kind, p_filename, p_type, p_size, p_sha256, p_content, v_actor)
    RETURNING id INTO v_id;
    PERFORM audit_append(v_actor, current_setting('itpm.roles', true), p_addr, p_rid,
                         'attach', 'project:' || p.code,
                         'attachment ' || v_id || ' kind=' || p_kind || ' size=' || p_size
                         || ' sha256=' || p_sha256);
    RETURN v_id;
END
$$;

-- Experts ---------------------------------------------------------------------

-- Assigns experts: the named ones (refused with expert_conflict when one is
-- from the declaring unit or already on the project), or, when none is named,
-- enough drawn at random from the pool to reach the number the thresholds ask
-- for (expert_pool_too_small when the pool cannot supply them).
CREATE FUNCTION experts_assign(p_code text, p_named text[], p_addr text, p_rid text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    p projects%ROWTYPE;
    v_needed integer;
    v_have integer;
    v_added integer := 0;
    v_name text;
    v_e expert_pool%ROWTYPE;
    v_actor text := current_setting('itpm.user_id', true);
BEGIN
    SELECT * INTO p FROM projects WHERE code = p_code;
    IF NOT FOUND THEN
        PERFORM itpm_refuse(404, 'not_found', 'no such project');
    END IF;
    IF NOT itpm_has_role('reviewer') OR NOT itpm_project_writable(p.region, p.unit, p.classified) THEN
        PERFORM itpm_refuse(403, 'forbidden', 'only a reviewer in scope assigns experts');
    END IF;
    -- Serializes draws on one project so an expert is never assigned twice.
    SELECT * INTO p FROM projects WHERE id = p.id FOR UPDATE;
    IF p.stage NOT IN ('registration', 'prereview') THEN
        PERFORM itpm_refuse(409, 'wrong_stage', 'experts are assigned at registration or prereview');
    END IF;
    SELECT count(*) INTO v_have FROM expert_assignments WHERE project_id = p.id;
    IF cardinality(p_named) > 0 THEN
        FOREACH v_name IN ARRAY p_named LOOP
            SELECT * INTO v_e FROM expert_pool WHERE user_id = v_name AND active;
            IF NOT FOUND THEN
                PERFORM itpm_refuse(422, 'unknown_expert', 'not in the expert pool: ' || v_name);
            END IF;
            IF p.classified AND NOT v_e.cleared THEN
                PERFORM itpm_refuse(409, 'expert_conflict',
                                    v_name || ' has no clearance for a classified project');
            END IF;
            IF v_e.unit = p.unit THEN
                PERFORM itpm_refuse(409, 'expert_conflict',
                                    v_name || ' belongs to the declaring unit');
            END IF;
            IF EXISTS (SELECT 1 FROM expert_assignments
                        WHERE project_id = p.id AND expert_id = v_name) THEN
                PERFORM itpm_refuse(409, 'expert_conflict', v_name || ' is already assigned');
            END IF;
            INSERT INTO expert_assignments (project_id, expert_id, unit)
            VALUES (p.id, v_name, v_e.unit);
            v_added := v_added + 1;
        END LOOP;
    ELSE
        v_needed := project_required_experts(p.region, p.budget_requested_fen) - v_have;
        IF v_needed > 0 THEN
            INSERT INTO expert_assignments (project_id, expert_id, unit)
            SELECT p.id, e.user_id, e.unit FROM expert_pool e
             WHERE e.active AND e.unit <> p.unit AND (e.cleared OR NOT p.classified)
               AND NOT EXISTS (SELECT 1 FROM expert_assignments a
                                WHERE a.project_id = p.id AND a.expert_id = e.user_id)
             ORDER BY random() LIMIT v_needed;
            GET DIAGNOSTICS v_added = ROW_COUNT;
            IF v_added < v_needed THEN
                PERFORM itpm_refuse(409, 'expert_pool_too_small',
                                    'the pool has ' || v_added || ' eligible experts, '
                                    || v_needed || ' are needed');
            END IF;
        END IF;
    END IF;
    PERFORM audit_append(v_actor, 'reviewer', p_addr, p_rid, 'experts_assign',
                         'project:' || p.code, v_added || ' experts assigned');
    RETURN v_added;
END
$$;

-- An assigned expert's score (0..100) and opinion, while the project is at prereview.
CREATE FUNCTION expert_score(p_code text, p_expert text, p_score integer, p_opinion text,
                             p_addr text, p_rid text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    p projects%ROWTYPE;
    v_actor text := current_setting('itpm.user_id', true);
BEGIN
    SELECT * INTO p FROM projects WHERE code = p_code;
    IF NOT FOUND THEN
        PERFORM itpm_refuse(404, 'not_found', 'no such project');
    END IF;
    IF NOT itpm_has_role('expert') OR p_expert <> v_actor THEN
        PERFORM itpm_refuse(403, 'forbidden', 'only the assigned expert scores');
    END IF;
    IF p.stage <> 'prereview' THEN
        PERFORM itpm_refuse(409, 'wrong_stage', 'scores are given at prereview');
    END IF;
    UPDATE expert_assignments SET score = p_score, opinion = coalesce(p_opinion, ''),
           scored_at = now()
     WHERE project_id = p.id AND expert_id = v_actor;
    IF NOT FOUND THEN
        PERFORM itpm_refuse(404, 'not_found', 'you are not assigned to this project');
    END IF;
    PERFORM audit_append(v_actor, 'expert', p_addr, p_rid, 'expert_score',
                         'project:' || p.code, 'score=' || p_score);
END
$$;

-- Joint sign-off ----------------------------------------------------------------

CREATE FUNCTION signoff_add(p_code text, p_approved boolean, p_opinion text, p_addr text,
                            p_rid text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    p projects%ROWTYPE;
    v_actor text := current_setting('itpm.user_id', true);
    v_unit text := current_setting('itpm.unit', true);
BEGIN
    SELECT * INTO p FROM projects WHERE code = p_code;
    IF NOT FOUND THEN
        PERFORM itpm_refuse(404, 'not_found', 'no such project');
    END IF;
    IF NOT itpm_has_role('joint_reviewer')
       OR NOT v_unit = ANY (project_required_signoffs(p.region, p.budget_requested_fen,
                                                      p.cross_department, p.classified)) THEN
        PERFORM itpm_refuse(403, 'forbidden', 'your department does not sign this project');
    END IF;
    IF p.stage <> 'pre_implementation' THEN
        PERFORM itpm_refuse(409, 'wrong_stage', 'sign-offs are given at pre_implementation');
    END IF;
    INSERT INTO signoffs (project_id, unit, actor, approved, opinion)
    VALUES (p.id, v_unit, v_actor, p_approved, coalesce(p_opinion, ''))
    ON CONFLICT (project_id, unit) DO UPDATE
       SET actor = excluded.actor, approved = excluded.approved, opinion = excluded.opinion,
           at = now();
    PERFORM audit_append(v_actor, 'joint_reviewer', p_addr, p_rid, 'signoff',
                         'project:' || p.code, v_unit || ' approved=' || p_approved);
END
$$;

-- Administration ----------------------------------------------------------------

CREATE FUNCTION config_window_put(p_region text, p_year integer, p_opens date, p_closes date,
                                  p_addr text, p_rid text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_old text;
BEGIN
    IF NOT itpm_has_role('admin') THEN
        PERFORM itpm_refuse(403, 'forbidden', 'only an admin changes the rules');
    END IF;
    SELECT opens || '..' || closes INTO v_old FROM rules_windows
     WHERE region = p_region AND year = p_year;
    INSERT INTO rules_windows (region, year, opens, closes)
    VALUES (p_region, p_year, p_opens, p_closes)
    ON CONFLICT (region, year) DO UPDATE SET opens = excluded.opens, closes = excluded.closes;
    PERFORM audit_append(current_setting('itpm.user_id', true), 'admin', p_addr, p_rid,
                         'config_window', 'region:' || p_region,
                         p_year || ': ' || coalesce(v_old, 'none') || ' -> ' || p_opens || '..'
                         || p_closes);
END
$$;

CREATE FUNCTION config_threshold_put(p_region text, p_expert_amount bigint, p_expert_count integer,
                                     p_joint_amount bigint, p_joint_count integer,
                                     p_min_mean integer, p_trial_days integer, p_addr text,
                                     p_rid text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d rules_thresholds%ROWTYPE;
BEGIN
    IF NOT itpm_has_role('admin') THEN
        PERFORM itpm_refuse(403, 'forbidden', 'only an admin changes the rules');
    END IF;
    SELECT * INTO d FROM rules_thresholds WHERE region = rules_region(p_region, 'rules_thresholds');
    INSERT INTO rules_thresholds (region, expert_amount_fen, expert_count, joint_amount_fen,
                                  joint_expert_count, expert_min_mean, change_director_pct,
                                  trial_days, filing_overdue_days, monitoring_min_availability,
                                  monitoring_abnormal_months)
    VALUES (p_region, p_expert_amount, p_expert_count, p_joint_amount, p_joint_count, p_min_mean,
            d.change_director_pct, p_trial_days, d.filing_overdue_days,
            d.monitoring_min_availability, d.monitoring_abnormal_months)
    ON CONFLICT (region) DO UPDATE SET expert_amount_fen = excluded.expert_amount_fen,
        expert_count = excluded.expert_count, joint_amount_fen = excluded.joint_amount_fen,
        joint_expert_count = excluded.joint_expert_count,
        expert_min_mean = excluded.expert_min_mean, trial_days = excluded.trial_days;
    PERFORM audit_append(current_setting('itpm.user_id', true), 'admin', p_addr, p_rid,
                         'config_thresholds', 'region:' || p_region,
                         'expert ' || p_expert_amount || '/' || p_expert_count || ' joint '
                         || p_joint_amount || '/' || p_joint_count || ' mean ' || p_min_mean
                         || ' trial ' || p_trial_days);
END
$$;

CREATE FUNCTION config_expert_put(p_user text, p_name text, p_unit text, p_fields text[],
                                  p_active boolean, p_cleared boolean, p_addr text, p_rid text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF NOT itpm_has_role('admin') THEN
        PERFORM itpm_refuse(403, 'forbidden', 'only an admin changes the expert pool');
    END IF;
    INSERT INTO expert_pool (user_id, name, unit, fields, active, cleared)
    VALUES (p_user, p_name, p_unit, p_fields, p_active, p_cleared)
    ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, unit = excluded.unit,
        fields = excluded.fields, active = excluded.active, cleared = excluded.cleared;
    PERFORM audit_append(current_setting('itpm.user_id', true), 'admin', p_addr, p_rid,
                         'config_expert', 'expert:' || p_user,
                         'unit=' || p_unit || ' active=' || p_active || ' cleared=' || p_cleared
                         || ' fields='
                         || array_to_string(p_fields, ','));
END
$$;

-- Statistics ---------------------------------------------------------------------

-- Counts and money in the caller's scope (row-level security applies).
CREATE VIEW project_stats_stage WITH (security_invoker = true) AS
SELECT stage, count(*) AS projects, sum(budget_requested_fen) AS requested_fen,
       sum(budget_approved_fen) AS approved_fen,
       sum(budget_requested_fen) FILTER (WHERE budget_approved_fen IS NOT NULL) AS requested_decided_fen,
       round(avg(extract(epoch FROM now() - stage_since) / 86400)::numeric, 2) AS avg_days_waiting,
       round(max(extract(epoch FROM now() - stage_since) / 86400)::numeric, 2) AS max_days_waiting
  FROM projects GROUP BY stage;

GRANT EXECUTE ON FUNCTION config_window_put(text, integer, date, date, text, text),
                          config_threshold_put(text, bigint, integer, bigint, integer, integer,
                                               integer, text, text),
                          config_expert_put(text, text, text, text[], boolean, boolean, text, text)
    TO itpm_app;
GRANT SELECT ON project_stats_stage TO itpm_app;
REVOKE ALL ON FUNCTION config_window_put(text, integer, date, date, text, text),
                       config_threshold_put(text, bigint, integer, bigint, integer, integer,
                                            integer, text, text),
                       config_expert_put(text, text, text, text[], boolean, boolean, text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION config_window_put(text, integer, date, date, text, text),
                          config_threshold_put(text, bigint, integer, bigint, integer, integer,
                                               integer, text, text),
                          config_expert_put(text, text, text, text[], boolean, boolean, text, text)
    TO itpm_app;
