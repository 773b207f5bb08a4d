-- What a joint reviewer and an expert see, at the cost of a list, not of a
-- call per row.
--
-- The read policy of projects asked project_required_signoffs() of every
-- row a joint reviewer's statement scanned (a function looking up the
-- region's lists and thresholds each time) and itpm_is_assigned_expert() of
-- every row an expert's did: with 70,000 projects a joint reviewer's list
-- ran into the statement time-out and the overview into the worker's. Each
-- is now worked out once, as an InitPlan in the place of the role test it
-- replaces (so no statement sets up more of them than before): the projects
-- assigned to the expert, and for a joint reviewer the least budget that
-- needs their department, by region and flags (kept for the transaction).
-- Per row only a comparison is left. What the policy allows is unchanged.

-- The projects assigned to the caller when an expert, else NULL (no row
-- matches). Definer: the assignments' own policy reads projects.
CREATE FUNCTION itpm_assigned_projects() RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT CASE WHEN itpm_has_role('expert')
                THEN coalesce((SELECT array_agg(project_id) FROM expert_assignments
                                WHERE expert_id = current_setting('itpm.user_id', true)),
                              '{}') END
$$;

-- For a joint reviewer, the least requested budget (fen) from which a
-- project needs the caller's department, by region and by the two flags the
-- rule reads: {"321300": {"np": 500000000, "cp": 0, …}, …}, the inner key
-- "c" or "n" for cross-department or not, then "s" or "p" for classified
-- or not. 0 where any amount needs it (the secrecy list for a classified
-- project, the joint list for a cross-department one), the region's joint
-- amount where only the joint list names the department, no key where
-- nothing does. NULL for anyone else. Worked out once per transaction (a
-- page of the list reads projects three times) and kept in a setting of
-- the transaction, as the caller's context is.
CREATE FUNCTION itpm_signoff_scope() RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_kept text := current_setting('itpm.signoff_scope', true);
    v_scope jsonb;
BEGIN
    IF NOT itpm_has_role('joint_reviewer') THEN
        RETURN NULL;
    END IF;
    IF v_kept <> '' THEN
        RETURN v_kept::jsonb;
    END IF;
    SELECT coalesce(jsonb_object_agg(g.region, g.least), '{}')
      INTO v_scope
      FROM (SELECT m.region, jsonb_object_agg(f.dept || f.secret, f.least) AS least
              FROM (SELECT r.code AS region, t.joint_amount_fen AS amount,
                           EXISTS (SELECT 1 FROM rules_signoff_units s
                                    WHERE s.purpose = 'joint' AND s.region = w.joint
                                      AND s.unit = current_setting('itpm.unit', true)) AS joint,
                           EXISTS (SELECT 1 FROM rules_signoff_units s
                                    WHERE s.purpose = 'secrecy' AND s.region = w.secrecy
                                      AND s.unit = current_setting('itpm.unit', true))
                           AS secrecy
                      FROM regions r
                     -- Each region's lists and thresholds looked up once.
                     CROSS JOIN LATERAL (
                           SELECT rules_region(r.code, 'rules_thresholds') AS thresholds,
                                  rules_list_region(r.code, 'signoffs', 'joint') AS joint,
                                  rules_list_region(r.code, 'signoffs', 'secrecy') AS secrecy
                           OFFSET 0) AS w
                      LEFT JOIN rules_thresholds t ON t.region = w.thresholds) AS m
             CROSS JOIN LATERAL (
                   SELECT c.dept, c.secret,
                          CASE WHEN c.secret = 's' AND m.secrecy THEN 0
                               WHEN m.joint AND c.dept = 'c' THEN 0
                               WHEN m.joint THEN m.amount END AS least
                     FROM (VALUES ('c', 's'), ('c', 'p'), ('n', 's'), ('n', 'p'))
                          AS c (dept, secret)) AS f
             WHERE f.least IS NOT NULL
             GROUP BY m.region) AS g;
    PERFORM set_config('itpm.signoff_scope', v_scope::text, true);
    RETURN v_scope;
END
$$;

-- Whether a project needs the sign-off of the department p_scope describes
-- (itpm_signoff_scope()): the rule of project_required_signoffs() over the
-- lists read once. p_scope is read once, so that the function is inlined
-- into the policy with the InitPlan as its argument; for anyone but a joint
-- reviewer it is NULL and nothing per row is built.
CREATE FUNCTION itpm_signoff_needed(p_scope jsonb, p_region text, p_budget bigint,
                                    p_cross boolean, p_classified boolean)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT p_budget >= ((p_scope -> p_region)
                        ->> CASE WHEN p_cross THEN CASE WHEN p_classified THEN 'cs' ELSE 'cp' END
                                 ELSE CASE WHEN p_classified THEN 'ns' ELSE 'np' END END)::bigint
$$;

REVOKE ALL ON FUNCTION itpm_assigned_projects() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION itpm_assigned_projects() TO itpm_app;

ALTER POLICY projects_read ON projects USING (
    (NOT classified OR itpm_cleared())
    AND ((SELECT itpm_scope_all(false))
         OR region = (SELECT itpm_scope_region())
         OR unit = (SELECT itpm_scope_unit())
         OR id = ANY ((SELECT itpm_assigned_projects())::bigint[])
         OR itpm_signoff_needed((SELECT itpm_signoff_scope()), region, budget_requested_fen,
                                cross_department, classified)));
