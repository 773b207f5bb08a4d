-- A rule's change audited as before -> after.
--
-- SPEC section 4 asks every audit record for a before/after summary; the
-- windows' had it, but a change of thresholds or of an expert recorded the
-- new values only, so the trail could not say what a region's rules were
-- before an admin changed them. Both now name each changed value as
-- before -> after (the before of a county without rules of its own is the
-- city's it inherited, marked so); an unchanged value is not repeated.
-- config_threshold_put() and config_expert_put() of 005 restated with that
-- change only.

CREATE OR REPLACE FUNCTION config_threshold_put(p_region text, p_expert_amount bigint,
                                                p_expert_count integer, p_joint_amount bigint,
                                                p_joint_count integer, p_min_mean integer,
                                                p_trial_days integer, p_addr text, p_rid text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d rules_thresholds%ROWTYPE;
    v_changes text;
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
    SELECT string_agg(c.name || ' ' || coalesce(c.before, 'none') || ' -> '
                      || coalesce(c.after, 'none'), ', ' ORDER BY c.ord)
      INTO v_changes
      FROM (VALUES (1, 'expert_amount_fen', d.expert_amount_fen::text, p_expert_amount::text),
                   (2, 'expert_count', d.expert_count::text, p_expert_count::text),
                   (3, 'joint_amount_fen', d.joint_amount_fen::text, p_joint_amount::text),
                   (4, 'joint_expert_count', d.joint_expert_count::text, p_joint_count::text),
                   (5, 'expert_min_mean', d.expert_min_mean::text, p_min_mean::text),
                   (6, 'trial_days', d.trial_days::text, p_trial_days::text))
           AS c (ord, name, before, after)
     WHERE c.before IS DISTINCT FROM c.after;
    PERFORM audit_append(current_setting('itpm.user_id', true), 'admin', p_addr, p_rid,
                         'config_thresholds', 'region:' || p_region,
                         coalesce(v_changes, 'unchanged')
                         || CASE WHEN d.region IS DISTINCT FROM p_region
                                 THEN ' (before: inherited from ' || coalesce(d.region, 'none')
                                      || ')'
                                 ELSE '' END);
END
$$;

CREATE OR REPLACE FUNCTION config_expert_put(p_user text, p_name text, p_unit text,
                                             p_fields text[], p_active boolean,
                                             p_cleared boolean, p_addr text, p_rid text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d expert_pool%ROWTYPE;
    v_changes text;
BEGIN
    IF NOT itpm_has_role('admin') THEN
        PERFORM itpm_refuse(403, 'forbidden', 'only an admin changes the expert pool');
    END IF;
    SELECT * INTO d FROM expert_pool WHERE user_id = p_user FOR UPDATE;
    INSERT INTO expert_pool (user_id, name, unit, fields, active, cleared)
    VALUES (p_user, p_name, p_unit, p_fields, p_active, p_cleared)
    ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, unit = excluded.unit,
        fields = excluded.fields, active = excluded.active, cleared = excluded.cleared;
    SELECT string_agg(c.name || '=' || coalesce(c.before, 'none') || ' -> '
                      || coalesce(c.after, 'none'), ' ' ORDER BY c.ord)
      INTO v_changes
      FROM (VALUES (1, 'name', d.name, p_name),
                   (2, 'unit', d.unit, p_unit),
                   (3, 'active', d.active::text, p_active::text),
                   (4, 'cleared', d.cleared::text, p_cleared::text),
                   (5, 'fields', array_to_string(d.fields, ','),
                    array_to_string(p_fields, ',')))
           AS c (ord, name, before, after)
     WHERE c.before IS DISTINCT FROM c.after;
    PERFORM audit_append(current_setting('itpm.user_id', true), 'admin', p_addr, p_rid,
                         'config_expert', 'expert:' || p_user,
                         CASE WHEN d.user_id IS NULL THEN 'added: ' ELSE '' END
                         || coalesce(v_changes, 'unchanged'));
END
$$;
