-- The rules an admin administers, and their changes audited as before -> after.
--
-- Issue 4 asks every gate up to approval to be configurable per region;
-- the materials an action needs and the departments whose sign-off a
-- project needs were per-region data without a way to change them. Both
-- are now lists of a region's thresholds (PUT /api/v1/config/thresholds):
-- the materials of submit and of accept, the joint and the secrecy
-- departments. A region follows the city's list until it sets one of its
-- own (rules_own marks it, so an empty list of its own, nothing needed,
-- is not taken for none), and back again when it asks to inherit it. Each
-- list is looked up on its own (rules_list_region()), for the gates, the
-- joint reviewers' scope and the batches alike; rules_region() keeps the
-- thresholds and the windows.
--
-- SPEC section 4 asks every audit record for a before/after summary; the
-- windows' had it, but a change of thresholds or of an expert recorded the
-- new values only. Both now name each changed value as before -> after
-- (the before of a county without thresholds of its own is the city's it
-- inherited, marked so); an unchanged value is not repeated. Changes of one
-- region's rules are serialised, so that a before is the one replaced.

-- What the daemon checks at the door, kept by the table too: a project over
-- the joint amount never needs fewer experts than a smaller one.
ALTER TABLE rules_thresholds
    ADD CONSTRAINT rules_thresholds_joint_above_expert
    CHECK (joint_amount_fen >= expert_amount_fen AND joint_expert_count >= expert_count);

CREATE TABLE rules_own (
    region text NOT NULL REFERENCES regions (code),
    tbl    text NOT NULL,
    key    text NOT NULL,
    PRIMARY KEY (region, tbl, key),
    CHECK ((tbl = 'materials' AND key IN ('submit', 'accept'))
           OR (tbl = 'signoffs' AND key IN ('joint', 'secrecy')))
);
INSERT INTO rules_own
SELECT DISTINCT region, 'materials', action FROM rules_materials
 WHERE action IN ('submit', 'accept')
UNION
SELECT DISTINCT region, 'signoffs', purpose FROM rules_signoff_units;
GRANT SELECT ON rules_own TO itpm_app;

-- The region whose list p_tbl/p_key applies to p_region: its own when it
-- has set one, else the city's.
CREATE FUNCTION rules_list_region(p_region text, p_tbl text, p_key text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN EXISTS (SELECT 1 FROM rules_own o
                              WHERE o.region = p_region AND o.tbl = p_tbl AND o.key = p_key)
                THEN p_region
                ELSE (SELECT code FROM regions WHERE kind = 'city' LIMIT 1) END
$$;

-- rules_region() of 004 for the tables still looked up as a whole.
CREATE OR REPLACE FUNCTION rules_region(p_region text, p_table text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE v_found boolean;
BEGIN
    CASE p_table
    WHEN 'rules_thresholds' THEN
        v_found := EXISTS (SELECT 1 FROM rules_thresholds WHERE region = p_region);
    WHEN 'rules_windows' THEN
        v_found := EXISTS (SELECT 1 FROM rules_windows WHERE region = p_region);
    END CASE;
    IF v_found THEN
        RETURN p_region;
    END IF;
    RETURN (SELECT code FROM regions WHERE kind = 'city' LIMIT 1);
END
$$;

-- project_missing_materials() and project_required_signoffs() of 004, each
-- list looked up on its own.
CREATE OR REPLACE FUNCTION project_missing_materials(p_id bigint, p_region text,
                                                     p_classified boolean, p_action text)
RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(m.kind ORDER BY m.kind), '{}')
      FROM rules_materials m
     WHERE m.region = rules_list_region(p_region, 'materials', p_action) AND m.action = p_action
       AND (NOT m.classified_only OR p_classified)
       AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.project_id = p_id AND a.kind = m.kind)
$$;

CREATE OR REPLACE FUNCTION project_required_signoffs(p_region text, p_budget bigint,
                                                     p_cross boolean, p_classified boolean)
RETURNS text[] LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(array_agg(unit ORDER BY unit), '{}')
      FROM rules_signoff_units s
     WHERE (s.purpose = 'joint'
            AND s.region = rules_list_region(p_region, 'signoffs', 'joint')
            AND (p_cross OR p_budget >= (SELECT joint_amount_fen FROM rules_thresholds
                                          WHERE region = rules_region(p_region, 'rules_thresholds'))))
        OR (s.purpose = 'secrecy' AND p_classified
            AND s.region = rules_list_region(p_region, 'signoffs', 'secrecy'))
$$;

-- batch_check() of 015, the submit materials looked up as a list.
CREATE OR REPLACE FUNCTION batch_check(p_region text, p_kind text, p_submit boolean, p_max_errors integer)
RETURNS TABLE (status integer, rule text, record integer, line integer, col integer,
               message text, total bigint, overall_status integer, overall_rule text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_rules text := rules_list_region(p_region, 'materials', 'submit');
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

-- A region's four lists, a row per item (name NULL for an empty list), in
-- the order they are written, and whether the region inherits each.
CREATE FUNCTION rules_list_items(p_region text)
RETURNS TABLE (tbl text, key text, ord integer, inherited boolean, name text, flag boolean)
LANGUAGE sql STABLE AS $$
    SELECT l.tbl, l.key, l.ord, rules_list_region(p_region, l.tbl, l.key) <> p_region, i.name,
           i.flag
      FROM (VALUES ('materials', 'submit', 1), ('materials', 'accept', 2),
                   ('signoffs', 'joint', 3), ('signoffs', 'secrecy', 4)) AS l (tbl, key, ord)
      LEFT JOIN LATERAL (
            SELECT m.kind AS name, m.classified_only AS flag
              FROM rules_materials m
             WHERE l.tbl = 'materials' AND m.action = l.key
               AND m.region = rules_list_region(p_region, l.tbl, l.key)
            UNION ALL
            SELECT s.unit, NULL
              FROM rules_signoff_units s
             WHERE l.tbl = 'signoffs' AND s.purpose = l.key
               AND s.region = rules_list_region(p_region, l.tbl, l.key)) AS i ON true
$$;

-- The lists of each region with thresholds of its own, as GET
-- /api/v1/config/thresholds writes them.
CREATE VIEW rules_lists WITH (security_invoker = true) AS
SELECT t.region, i.* FROM rules_thresholds t CROSS JOIN LATERAL rules_list_items(t.region) AS i;
GRANT SELECT ON rules_lists TO itpm_app;

-- A region's lists as one line for the audit: "submit=[a, b*] accept=(city)
-- joint=[...] secrecy=[...]" (* classified only; (city) inherited).
CREATE FUNCTION rules_lists_text(p_region text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT string_agg(l.key || '=' || CASE WHEN l.inherited THEN '(city)'
                                           ELSE '[' || l.items || ']' END, ' ' ORDER BY l.ord)
      FROM (SELECT i.key, i.ord, bool_and(i.inherited) AS inherited,
                   coalesce(string_agg(i.name || CASE WHEN i.flag THEN '*' ELSE '' END, ', '
                                       ORDER BY i.name), '') AS items
              FROM rules_list_items(p_region) AS i
             GROUP BY i.key, i.ord) AS l
$$;

-- The lists p_lists names ("tbl:key:own" replaced by the items of p_items
-- that are "tbl:key:name:flag", "tbl:key:inherit" given back to the city's).
CREATE FUNCTION rules_lists_put(p_region text, p_lists text[], p_items text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_list text;
    v_tbl text;
    v_key text;
BEGIN
    FOREACH v_list IN ARRAY p_lists LOOP
        v_tbl := split_part(v_list, ':', 1);
        v_key := split_part(v_list, ':', 2);
        IF v_tbl = 'materials' THEN
            DELETE FROM rules_materials WHERE region = p_region AND action = v_key;
            INSERT INTO rules_materials (region, action, kind, classified_only)
            SELECT p_region, v_key, split_part(i, ':', 3), split_part(i, ':', 4)::boolean
              FROM unnest(p_items) AS i
             WHERE split_part(i, ':', 1) = v_tbl AND split_part(i, ':', 2) = v_key;
        ELSE
            DELETE FROM rules_signoff_units WHERE region = p_region AND purpose = v_key;
            INSERT INTO rules_signoff_units (region, purpose, unit)
            SELECT p_region, v_key, split_part(i, ':', 3)
              FROM unnest(p_items) AS i
             WHERE split_part(i, ':', 1) = v_tbl AND split_part(i, ':', 2) = v_key;
        END IF;
        IF split_part(v_list, ':', 3) = 'inherit' THEN
            IF EXISTS (SELECT 1 FROM regions WHERE code = p_region AND kind = 'city') THEN
                PERFORM itpm_refuse(422, 'city_lists_own',
                                    'the city''s lists are its own: it inherits none');
            END IF;
            DELETE FROM rules_own WHERE region = p_region AND tbl = v_tbl AND key = v_key;
        ELSE
            INSERT INTO rules_own VALUES (p_region, v_tbl, v_key) ON CONFLICT DO NOTHING;
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION rules_lists_put(text, text[], text[]) FROM PUBLIC;

DROP FUNCTION config_threshold_put(text, bigint, integer, bigint, integer, integer, integer, text,
                                   text);

CREATE FUNCTION config_threshold_put(p_region text, p_expert_amount bigint,
                                     p_expert_count integer, p_joint_amount bigint,
                                     p_joint_count integer, p_min_mean integer,
                                     p_trial_days integer, p_lists text[], p_items text[],
                                     p_addr text, p_rid text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d rules_thresholds%ROWTYPE;
    v_changes text;
    v_lists_before text;
    v_lists_after text;
BEGIN
    IF NOT itpm_has_role('admin') THEN
        PERFORM itpm_refuse(403, 'forbidden', 'only an admin changes the rules');
    END IF;
    -- One change of a region's rules at a time (its own lock space, the
    -- two-key form: apart from every one-key lock of the schema).
    PERFORM pg_advisory_xact_lock(7305007, hashtext(p_region));
    SELECT * INTO d FROM rules_thresholds WHERE region = rules_region(p_region, 'rules_thresholds');
    v_lists_before := rules_lists_text(p_region);
    PERFORM rules_lists_put(p_region, p_lists, p_items);
    v_lists_after := rules_lists_text(p_region);
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
                   (6, 'trial_days', d.trial_days::text, p_trial_days::text),
                   (7, 'lists', v_lists_before, v_lists_after))
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
REVOKE ALL ON FUNCTION config_threshold_put(text, bigint, integer, bigint, integer, integer,
                                            integer, text[], text[], text, text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION config_threshold_put(text, bigint, integer, bigint, integer, integer,
                                               integer, text[], text[], text, text)
    TO itpm_app;

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
                   (5, 'fields', d.fields::text, p_fields::text))
           AS c (ord, name, before, after)
     WHERE c.before IS DISTINCT FROM c.after;
    PERFORM audit_append(current_setting('itpm.user_id', true), 'admin', p_addr, p_rid,
                         'config_expert', 'expert:' || p_user,
                         CASE WHEN d.user_id IS NULL THEN 'added: ' ELSE '' END
                         || coalesce(v_changes, 'unchanged'));
END
$$;
