-- The policies of projects with fewer sub-selects.
--
-- A (SELECT f()) in a policy becomes an InitPlan: computed at most once per
-- statement, which keeps a list from reading the caller's settings again for
-- every row it scans, but set up at the start of every statement that reads
-- or writes projects, whether it is computed or not. A transition's update
-- carries the read policy and the update policy twice (its rows and its
-- check): fifteen of them, a tenth of the transition's work on the server.
-- Two were not worth their set-up: the clearance, asked only of classified
-- rows, and the caller's unit, asked only of a joint reviewer's rows once
-- their role has been found; each is now read for just those rows. What the
-- policies allow is unchanged.

ALTER POLICY projects_read ON projects USING (
    (NOT classified OR itpm_cleared())
    AND ((SELECT itpm_scope_all(false))
         OR region = (SELECT itpm_scope_region())
         OR unit = (SELECT itpm_scope_unit())
         OR ((SELECT itpm_has_role('expert')) AND itpm_is_assigned_expert(id))
         OR ((SELECT itpm_has_role('joint_reviewer'))
             AND current_setting('itpm.unit', true)
                 = ANY (project_required_signoffs(region, budget_requested_fen,
                                                  cross_department, classified)))));

ALTER POLICY projects_insert ON projects WITH CHECK (
    (NOT classified OR itpm_cleared())
    AND ((SELECT itpm_scope_all(true)) OR region = (SELECT itpm_scope_region())
         OR unit = (SELECT itpm_scope_unit())));

ALTER POLICY projects_update ON projects
    USING ((NOT classified OR itpm_cleared())
           AND ((SELECT itpm_scope_all(true)) OR region = (SELECT itpm_scope_region())
                OR unit = (SELECT itpm_scope_unit())))
    WITH CHECK ((NOT classified OR itpm_cleared())
                AND ((SELECT itpm_scope_all(true)) OR region = (SELECT itpm_scope_region())
                     OR unit = (SELECT itpm_scope_unit())));
