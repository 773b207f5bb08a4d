-- The project's rows without an ORDER BY: the daemon puts the data resources
-- in code order itself (fcgi-app/api/projects.c). The sort node, over rows as
-- wide as the whole project, was the most expensive part of starting every
-- project read and every write's answer, for the few resources a project has.
CREATE OR REPLACE FUNCTION project_rows(p_code text) RETURNS SETOF project_documents
LANGUAGE sql STABLE AS $$
    SELECT * FROM project_documents v WHERE v.code = p_code
$$;
