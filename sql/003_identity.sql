-- Identity and access: sessions, failed-login throttling, the hash-chained
-- audit log, and row-level security on projects.

-- Audit ------------------------------------------------------------------

CREATE SEQUENCE audit_log_id_seq;

CREATE TABLE audit_log (
    id          bigint PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    role        text NOT NULL,
    client_addr text NOT NULL,
    request_id  text NOT NULL,
    action      text NOT NULL,
    object      text NOT NULL,
    summary     text NOT NULL,
    prev_hash   bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash        bytea NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_object ON audit_log (object, id);

-- Each field is length-prefixed so no choice of values can make two
-- different records hash the same input.
CREATE FUNCTION audit_record_hash(p_prev bytea, p_id bigint, p_at timestamptz, p_actor text,
                                  p_role text, p_addr text, p_rid text, p_action text,
                                  p_object text, p_summary text)
-- STABLE, not IMMUTABLE: to_char() is stable, and a function declared with a
-- stronger volatility than its body is never inlined (its body would be
-- planned again on every audited write).
-- One format() rather than a chain of || keeps the expression small: it is
-- compiled again for every audited write.
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256(p_prev || convert_to(
        format('%s:%s%s:%s%s:%s%s:%s%s:%s%s:%s%s:%s%s:%s%s:%s',
               length(p_id::text), p_id,
               length(to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')),
               to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
               length(p_actor), p_actor, length(p_role), p_role, length(p_addr), p_addr,
               length(p_rid), p_rid, length(p_action), p_action, length(p_object), p_object,
               length(p_summary), p_summary), 'UTF8'))
$$;

-- Appends one record to the chain. The advisory lock serializes writers for
-- the rest of their transaction, so the chain never forks and ids follow
-- commit order.
CREATE FUNCTION audit_append(p_actor text, p_role text, p_addr text, p_rid text,
                             p_action text, p_object text, p_summary text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_prev bytea;
    v_id bigint;
    v_at timestamptz := clock_timestamp();
    -- Each field cut once, for the row and its hash alike.
    v_actor text := left(p_actor, 256);
    v_role text := left(p_role, 256);
    v_addr text := left(p_addr, 64);
    v_rid text := left(p_rid, 64);
    v_action text := left(p_action, 64);
    v_object text := left(p_object, 256);
    v_summary text := left(p_summary, 2000);
BEGIN
    PERFORM pg_advisory_xact_lock(7305002);
    SELECT hash INTO v_prev FROM audit_log ORDER BY id DESC LIMIT 1;
    IF v_prev IS NULL THEN
        v_prev := decode(repeat('00', 32), 'hex');
    END IF;
    v_id := nextval('audit_log_id_seq');
    INSERT INTO audit_log (id, at, actor, role, client_addr, request_id, action, object, summary,
                           prev_hash, hash)
    VALUES (v_id, v_at, v_actor, v_role, v_addr, v_rid, v_action, v_object, v_summary, v_prev,
            audit_record_hash(v_prev, v_id, v_at, v_actor, v_role, v_addr, v_rid, v_action,
                              v_object, v_summary));
    RETURN v_id;
END
$$;

-- Recomputes the chain; returns the number of records and the first record
-- whose hash or link does not hold (NULL when the chain is intact).
CREATE FUNCTION audit_verify(OUT records bigint, OUT first_broken bigint, OUT reason text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r audit_log%ROWTYPE;
    v_prev bytea := decode(repeat('00', 32), 'hex');
BEGIN
    records := 0;
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        records := records + 1;
        IF first_broken IS NULL THEN
            IF r.prev_hash <> v_prev THEN
                first_broken := r.id;
                reason := 'link to the previous record broken (a record was removed or changed)';
            ELSIF r.hash <> audit_record_hash(r.prev_hash, r.id, r.at, r.actor, r.role,
                                              r.client_addr, r.request_id, r.action, r.object,
                                              r.summary) THEN
                first_broken := r.id;
                reason := 'content does not match its hash (the record was edited)';
            END IF;
        END IF;
        v_prev := r.hash;
    END LOOP;
END
$$;

CREATE FUNCTION audit_log_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records cannot be changed or removed' USING ERRCODE = '42501';
END
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_immutable();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_immutable();

-- Failed logins -------------------------------------------------------------

CREATE TABLE login_failures (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    username    text NOT NULL,
    client_addr text NOT NULL
);
CREATE INDEX login_failures_user ON login_failures (username, at);
CREATE INDEX login_failures_addr ON login_failures (client_addr, at);
CREATE INDEX login_failures_at ON login_failures (at);

-- Seconds the caller must wait (0 = may try): an account or address with
-- `limit` failures inside the window stays locked until a window has passed
-- since its last failure.
-- PL/pgSQL keeps its plans between calls (a SECURITY DEFINER SQL function
-- is planned again on each one).
CREATE FUNCTION login_throttle(p_user text, p_addr text, p_user_limit integer,
                               p_addr_limit integer, p_window integer)
RETURNS integer LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_since timestamptz := now() - make_interval(secs => p_window);
    v_count bigint;
    v_last timestamptz;
    v_wait integer := 0;
BEGIN
    SELECT count(*), max(at) INTO v_count, v_last FROM login_failures
     WHERE username = lower(left(p_user, 256)) AND at > v_since;
    IF v_count >= p_user_limit THEN
        v_wait := ceil(extract(epoch FROM v_last + make_interval(secs => p_window) - now()));
    END IF;
    SELECT count(*), max(at) INTO v_count, v_last FROM login_failures
     WHERE client_addr = p_addr AND at > v_since;
    IF v_count >= p_addr_limit THEN
        v_wait := greatest(v_wait, ceil(extract(epoch FROM v_last
                                                + make_interval(secs => p_window) - now()))::integer);
    END IF;
    RETURN greatest(v_wait, 0);
END
$$;

CREATE FUNCTION login_failed(p_user text, p_addr text, p_rid text, p_reason text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO login_failures (username, client_addr) VALUES (lower(left(p_user, 256)), p_addr);
    DELETE FROM login_failures WHERE at < now() - interval '2 days';
    PERFORM audit_append(left(p_user, 256), '-', p_addr, p_rid, 'login_failed',
                         'user:' || left(p_user, 128), p_reason);
END
$$;

-- Sessions ------------------------------------------------------------------

CREATE TABLE sessions (
    token_hash   bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    csrf_token   text NOT NULL,
    user_id      text NOT NULL,
    display_name text NOT NULL,
    unit         text NOT NULL,
    region       text NOT NULL,
    roles        text[] NOT NULL,
    classified   boolean NOT NULL,
    source       text NOT NULL CHECK (source IN ('ldap', 'sso')),
    client_addr  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    idle_seconds integer NOT NULL CHECK (idle_seconds > 0),
    revoked_at   timestamptz
);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Opens a session (and revokes the one the client came with, if any), with
-- its audit record, in one transaction.
CREATE FUNCTION session_open(p_hash bytea, p_csrf text, p_user text, p_name text, p_unit text,
                             p_region text, p_roles text[], p_classified boolean, p_source text,
                             p_addr text, p_rid text, p_idle integer, p_absolute integer,
                             p_old_hash bytea)
RETURNS timestamptz LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_expires timestamptz := now() + make_interval(secs => p_absolute);
BEGIN
    IF p_old_hash IS NOT NULL THEN
        UPDATE sessions SET revoked_at = now() WHERE token_hash = p_old_hash AND revoked_at IS NULL;
    END IF;
    DELETE FROM sessions WHERE expires_at < now() - interval '1 day';
    INSERT INTO sessions (token_hash, csrf_token, user_id, display_name, unit, region, roles,
                          classified, source, client_addr, expires_at, idle_seconds)
    VALUES (p_hash, p_csrf, p_user, p_name, p_unit, p_region, p_roles, p_classified, p_source,
            p_addr, v_expires, p_idle);
    PERFORM audit_append(p_user, array_to_string(p_roles, ','), p_addr, p_rid, 'login',
                         'user:' || p_user, 'source=' || p_source || ' unit=' || p_unit ||
                         ' region=' || p_region || ' roles=' || array_to_string(p_roles, ','));
    -- When the session ends if left idle, as session_lookup reports it.
    RETURN least(v_expires, now() + make_interval(secs => p_idle));
END
$$;

-- The live session for a token hash, or no row. last_seen is written at most
-- every 15 seconds (or half the idle time) so reads do not each turn into a write.
CREATE FUNCTION session_lookup(p_hash bytea)
RETURNS TABLE (user_id text, display_name text, unit text, region text, roles text[],
               classified boolean, csrf_token text, expires_at timestamptz, source text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    UPDATE sessions s SET last_seen = now()
     WHERE s.token_hash = p_hash AND s.revoked_at IS NULL AND s.expires_at > now()
       AND s.last_seen > now() - make_interval(secs => s.idle_seconds)
       AND s.last_seen < now() - least(interval '15 seconds',
                                       make_interval(secs => s.idle_seconds / 2.0));
    RETURN QUERY
    SELECT s.user_id, s.display_name, s.unit, s.region, s.roles, s.classified, s.csrf_token,
           least(s.expires_at, s.last_seen + make_interval(secs => s.idle_seconds)), s.source
      FROM sessions s
     WHERE s.token_hash = p_hash AND s.revoked_at IS NULL AND s.expires_at > now()
       AND s.last_seen > now() - make_interval(secs => s.idle_seconds);
END
$$;

CREATE FUNCTION session_close(p_hash bytea, p_addr text, p_rid text)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_user text;
    v_roles text[];
BEGIN
    UPDATE sessions SET revoked_at = now()
     WHERE token_hash = p_hash AND revoked_at IS NULL
    RETURNING user_id, roles INTO v_user, v_roles;
    IF v_user IS NULL THEN
        RETURN false;
    END IF;
    PERFORM audit_append(v_user, array_to_string(v_roles, ','), p_addr, p_rid, 'logout',
                         'user:' || v_user, '');
    RETURN true;
END
$$;

-- Row-level scope -------------------------------------------------------------

-- Sets the caller for the rest of the transaction; every policy reads it.
CREATE FUNCTION itpm_set_context(p_user text, p_unit text, p_region text, p_roles text,
                                 p_classified boolean)
RETURNS void LANGUAGE sql AS $$
    SELECT set_config('itpm.user_id', p_user, true), set_config('itpm.unit', p_unit, true),
           set_config('itpm.region', p_region, true), set_config('itpm.roles', p_roles, true),
           set_config('itpm.classified', CASE WHEN p_classified THEN 'on' ELSE 'off' END, true);
$$;

CREATE FUNCTION itpm_has_role(p_role text) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT p_role = ANY (string_to_array(coalesce(current_setting('itpm.roles', true), ''), ','))
$$;

-- Whether the caller's region is the city (its Data Bureau sees every region).
CREATE FUNCTION itpm_region_is_city() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM regions
                    WHERE code = current_setting('itpm.region', true) AND kind = 'city')
$$;

-- SPEC section 3: own unit (submitter, cdo); own region (county_admin, and a
-- reviewer or director of a county); everything (a reviewer or director of
-- the city, the auditor, the admin read-only). Classified projects need the
-- clearance on top. Experts, evaluators and joint reviewers see assigned
-- projects: the lifecycle migration extends this function.
CREATE FUNCTION itpm_project_visible(p_id bigint, p_region text, p_unit text,
                                     p_classified boolean)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (NOT p_classified OR coalesce(current_setting('itpm.classified', true), 'off') = 'on')
       AND (itpm_has_role('auditor') OR itpm_has_role('admin')
            OR ((itpm_has_role('reviewer') OR itpm_has_role('director'))
                AND (current_setting('itpm.region', true) = p_region OR itpm_region_is_city()))
            OR (itpm_has_role('county_admin') AND current_setting('itpm.region', true) = p_region)
            OR ((itpm_has_role('submitter') OR itpm_has_role('cdo'))
                AND current_setting('itpm.unit', true) = p_unit))
$$;

-- Writes: the same scope without the read-only roles.
CREATE FUNCTION itpm_project_writable(p_id bigint, p_region text, p_unit text,
                                      p_classified boolean)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (NOT p_classified OR coalesce(current_setting('itpm.classified', true), 'off') = 'on')
       AND (((itpm_has_role('reviewer') OR itpm_has_role('director'))
             AND (current_setting('itpm.region', true) = p_region OR itpm_region_is_city()))
            OR (itpm_has_role('county_admin') AND current_setting('itpm.region', true) = p_region)
            OR ((itpm_has_role('submitter') OR itpm_has_role('cdo'))
                AND current_setting('itpm.unit', true) = p_unit))
$$;

ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE projects FORCE ROW LEVEL SECURITY;
CREATE POLICY projects_read ON projects FOR SELECT
    USING (itpm_project_visible(id, region, unit, classified));
CREATE POLICY projects_insert ON projects FOR INSERT
    WITH CHECK (itpm_project_writable(id, region, unit, classified));
CREATE POLICY projects_update ON projects FOR UPDATE
    USING (itpm_project_writable(id, region, unit, classified))
    WITH CHECK (itpm_project_writable(id, region, unit, classified));

-- Privileges ---------------------------------------------------------------

REVOKE ALL ON FUNCTION audit_append(text, text, text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_verify() FROM PUBLIC;
REVOKE ALL ON FUNCTION login_throttle(text, text, integer, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION login_failed(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION session_open(bytea, text, text, text, text, text, text[], boolean, text,
                                    text, text, integer, integer, bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION session_lookup(bytea) FROM PUBLIC;
REVOKE ALL ON FUNCTION session_close(bytea, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_append(text, text, text, text, text, text, text),
                          audit_verify(),
                          login_throttle(text, text, integer, integer, integer),
                          login_failed(text, text, text, text),
                          session_open(bytea, text, text, text, text, text, text[], boolean, text,
                                       text, text, integer, integer, bytea),
                          session_lookup(bytea),
                          session_close(bytea, text, text)
    TO itpm_app;
GRANT SELECT ON audit_log TO itpm_app;
