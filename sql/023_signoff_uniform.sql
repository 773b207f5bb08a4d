-- A joint reviewer's scope without a JSON lookup per row when every region
-- asks the same of the department.
--
-- The read policy compared each row's budget with the least amount needing
-- the caller's department, looked up in the scope of 020 by region and
-- then by flags: two jsonb lookups and a number parsed per row, about 0.4 µs
-- each, most of a joint reviewer's list (a count at one stage over 20,000
-- rows in scope of the policy: 11-15 ms). Regions follow the city's rules
-- unless they set their own, so the scope is usually the same for every
-- region: the four amounts (cross-department or not, classified or not) are
-- then one array, worked out once per statement like the rest of the scope,
-- and a row costs a subscript. A region with rules of its own makes the
-- array NULL and every row takes the lookup by region as before. What the
-- policy allows is unchanged.

-- The least amount for each flag pair, in the order of the policy's
-- subscript (cs, cp, ns, np), when every region asks the same; a flag pair
-- that needs the department nowhere gets an amount no budget reaches.
CREATE FUNCTION itpm_signoff_uniform() RETURNS bigint[]
LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
DECLARE
    v_scope jsonb := itpm_signoff_scope();
    v_each jsonb[];
    v_never constant bigint := 9223372036854775807;
BEGIN
    IF v_scope IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT array_agg(DISTINCT coalesce(v_scope -> r.code, '{}')) INTO v_each FROM regions r;
    IF cardinality(v_each) IS DISTINCT FROM 1 THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY[coalesce((v_each[1] ->> 'cs')::bigint, v_never),
                 coalesce((v_each[1] ->> 'cp')::bigint, v_never),
                 coalesce((v_each[1] ->> 'ns')::bigint, v_never),
                 coalesce((v_each[1] ->> 'np')::bigint, v_never)];
END
$$;

-- The least amount from the scope by region and flags (NULL: not needed).
-- One expression the planner inlines into the policy.
CREATE FUNCTION itpm_signoff_least(p_scope jsonb, p_region text, p_cross boolean,
                                   p_classified boolean)
RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT ((p_scope -> p_region)
            ->> CASE WHEN p_cross THEN CASE WHEN p_classified THEN 'cs' ELSE 'cp' END
                     ELSE CASE WHEN p_classified THEN 'ns' ELSE 'np' END END)::bigint
$$;

ALTER POLICY projects_read ON projects USING (
    (NOT classified OR itpm_cleared())
    AND ((SELECT itpm_scope_all(false))
         OR region = (SELECT itpm_scope_region())
         OR unit = (SELECT itpm_scope_unit())
         OR id = ANY ((SELECT itpm_assigned_projects())::bigint[])
         OR budget_requested_fen
            >= coalesce((SELECT itpm_signoff_uniform())
                            [CASE WHEN cross_department THEN CASE WHEN classified THEN 1 ELSE 2 END
                                  ELSE CASE WHEN classified THEN 3 ELSE 4 END END],
                        itpm_signoff_least((SELECT itpm_signoff_scope()), region,
                                           cross_department, classified))));

DROP FUNCTION itpm_signoff_needed(jsonb, text, bigint, boolean, boolean);
