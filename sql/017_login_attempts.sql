-- Failed logins counted before the directory is asked, not after.
--
-- login_throttle() read the count and login_failed() wrote a failure once
-- the directory had answered: two statements with the bind between them,
-- so guesses sent at the same moment all passed the check before any was
-- counted (24 at once gave 8 binds, not 5). Now an attempt is taken under
-- a lock on the account and one on the address, counted at once as a
-- failure, and taken back only when the login succeeds or the directory
-- could not be asked: at most the limit of guesses reach the directory,
-- however many are sent together.

DROP FUNCTION login_throttle(text, text, integer, integer, integer);
DROP FUNCTION login_failed(text, text, text, text);

-- (wait, attempt): seconds to wait and no attempt when the account or the
-- address has its limit of failures inside the window (pending attempts
-- included); otherwise 0 and the attempt, already counted.
CREATE FUNCTION login_attempt(p_user text, p_addr text, p_user_limit integer,
                              p_addr_limit integer, p_window integer,
                              OUT wait integer, OUT attempt bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_user text := lower(left(p_user, 256));
    v_since timestamptz := now() - make_interval(secs => p_window);
    v_count bigint;
    v_last timestamptz;
BEGIN
    wait := 0;
    -- Always the account's lock first, then the address's: no two callers
    -- can each hold one the other waits for.
    PERFORM pg_advisory_xact_lock(7305005, hashtext(v_user));
    PERFORM pg_advisory_xact_lock(7305006, hashtext(p_addr));
    SELECT count(*), max(at) INTO v_count, v_last FROM login_failures
     WHERE username = v_user AND at > v_since;
    IF v_count >= p_user_limit THEN
        wait := ceil(extract(epoch FROM v_last + make_interval(secs => p_window) - now()));
    END IF;
    SELECT count(*), max(at) INTO v_count, v_last FROM login_failures
     WHERE client_addr = p_addr AND at > v_since;
    IF v_count >= p_addr_limit THEN
        wait := greatest(wait, ceil(extract(epoch FROM v_last
                                            + make_interval(secs => p_window) - now()))::integer);
    END IF;
    wait := greatest(wait, 0);
    IF wait = 0 THEN
        INSERT INTO login_failures (username, client_addr) VALUES (v_user, p_addr)
        RETURNING id INTO attempt;
        -- Old rows go a few at a time, skipping any another login is
        -- deleting: no caller waits on another's clean-up.
        DELETE FROM login_failures
         WHERE id IN (SELECT id FROM login_failures WHERE at < now() - interval '2 days'
                       ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED);
    END IF;
END
$$;

-- The attempt was not a failure: the login succeeded, or the directory
-- could not be asked. Only the caller's own, recent attempt.
CREATE FUNCTION login_attempt_cancel(p_attempt bigint, p_user text, p_addr text)
RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DELETE FROM login_failures
     WHERE id = p_attempt AND username = lower(left(p_user, 256)) AND client_addr = p_addr
       AND at > now() - interval '10 minutes'
$$;

-- The attempt failed: it stays counted, and the audit trail says why.
CREATE FUNCTION login_attempt_failed(p_user text, p_addr text, p_rid text, p_reason text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM audit_append(left(p_user, 256), '-', p_addr, p_rid, 'login_failed',
                         'user:' || left(p_user, 128), p_reason);
END
$$;

REVOKE ALL ON FUNCTION login_attempt(text, text, integer, integer, integer),
                       login_attempt_cancel(bigint, text, text),
                       login_attempt_failed(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION login_attempt(text, text, integer, integer, integer),
                          login_attempt_cancel(bigint, text, text),
                          login_attempt_failed(text, text, text, text) TO itpm_app;
