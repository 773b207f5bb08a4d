-- The transition's update through policies of its own role.
--
-- project_transition() ran as the schema's owner, for whom the policies of
-- projects are forced, and its one UPDATE carried four of them: the read
-- policy and the update policy as conditions on the row, and both again as
-- checks of the new row (PostgreSQL adds the read policy to an update that
-- reads columns). Sixteen InitPlans, set up for every transition, and
-- about a tenth of the server's work per transition, to say what the update
-- policy alone says: the caller may write this project.
--
-- It now runs as `itpm_transition`, a role without login and without
-- BYPASSRLS, which the policies still hold:
-- - the update policy `projects_update` applies to it unchanged: it finds
--   and changes only the projects the caller's settings may write;
-- - its read policy is `true`: it reads projects only through that update
--   (write scope is within read scope), and the checks it calls when the
--   update finds nothing run as the owner again (SECURITY DEFINER below),
--   so an out-of-scope project is still 404, never 403 or 409;
-- - its check of the new row is `true`: it may update only the columns a
--   transition writes (the column grant below), none of which any policy
--   reads, so the new row is in scope exactly when the old one was.
-- The role is created with the database (scripts/stack, README: Deploying):
-- the owner must be a member to hand it the function, and must not inherit
-- it, or these policies would apply to every function the owner runs.
--
-- A later migration that restates either function keeps this arrangement:
-- project_transition() is no longer the owner's, so it is replaced as its
-- role (GRANT CREATE ON SCHEMA public TO itpm_transition; SET ROLE
-- itpm_transition; CREATE OR REPLACE ...; RESET ROLE; REVOKE CREATE ...),
-- never dropped and created again (that would give it back to the owner),
-- and project_transition_check() is restated with SECURITY DEFINER and its
-- search_path, or its refusals would be worked out as the transition's
-- role, which sees every project. test_identity_scope.py checks both.

DO $$
DECLARE
    r pg_roles%ROWTYPE;
BEGIN
    SELECT * INTO r FROM pg_roles WHERE rolname = 'itpm_transition';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'role itpm_transition missing: CREATE ROLE itpm_transition NOLOGIN; '
                        'ALTER ROLE % NOINHERIT; GRANT itpm_transition TO % (README: Deploying)',
                        current_user, current_user;
    END IF;
    IF r.rolsuper OR r.rolbypassrls OR r.rolcanlogin THEN
        RAISE EXCEPTION 'itpm_transition must be NOLOGIN, NOSUPERUSER and NOBYPASSRLS';
    END IF;
    IF NOT pg_has_role(current_user, 'itpm_transition', 'MEMBER') THEN
        RAISE EXCEPTION 'GRANT itpm_transition TO % first (README: Deploying)', current_user;
    END IF;
    IF pg_has_role(current_user, 'itpm_transition', 'USAGE') THEN
        RAISE EXCEPTION '% inherits itpm_transition, whose policies would then apply to the '
                        'owner''s functions: ALTER ROLE % NOINHERIT (PostgreSQL 16 and later: '
                        'GRANT itpm_transition TO % WITH INHERIT FALSE)',
                        current_user, current_user, current_user;
    END IF;
    -- A role that inherits nothing has no rights through pg_database_owner.
    IF NOT has_schema_privilege(current_user, 'public', 'CREATE') THEN
        RAISE EXCEPTION '% cannot create in schema public: ALTER SCHEMA public OWNER TO %',
                        current_user, current_user;
    END IF;
    IF EXISTS (SELECT FROM pg_auth_members
                WHERE roleid = 'itpm_transition'::regrole AND member <> current_user::regrole) THEN
        RAISE EXCEPTION 'itpm_transition may be granted to the schema owner only';
    END IF;
END
$$;

-- The checks, and what they read, as the owner whoever calls them.
ALTER FUNCTION project_transition_check(text, text, integer, text, bigint, text[])
    SECURITY DEFINER SET search_path = public, pg_temp;

GRANT CREATE ON SCHEMA public TO itpm_transition;
ALTER FUNCTION project_transition(text, text, integer, text, bigint, integer, text, text)
    OWNER TO itpm_transition;
REVOKE CREATE ON SCHEMA public FROM itpm_transition;

GRANT SELECT ON projects, lifecycle_actions TO itpm_transition;
GRANT UPDATE (stage, version, stage_since, updated_at, budget_approved_fen, list_year,
              return_reason) ON projects TO itpm_transition;
GRANT INSERT ON project_events TO itpm_transition;
GRANT USAGE ON SEQUENCE project_events_id_seq TO itpm_transition;
GRANT EXECUTE ON FUNCTION project_transition_check(text, text, integer, text, bigint, text[]),
                          audit_append(text, text, text, text, text, text, text)
    TO itpm_transition;

CREATE POLICY projects_transition_read ON projects FOR SELECT TO itpm_transition USING (true);
CREATE POLICY projects_transition_write ON projects FOR UPDATE TO itpm_transition
    USING (false) WITH CHECK (true);
-- The event of the project the same transaction has just locked and updated
-- through the policies above, as when the owner wrote it (010).
CREATE POLICY project_events_transition ON project_events FOR INSERT TO itpm_transition
    WITH CHECK (true);
