-- The newest audit records can no longer vanish unseen once verified.
--
-- The hash chain shows an edited record and a removed one with records
-- after it, but not the removal of the newest records: what is left is a
-- whole chain. Each verification that finds the chain whole now keeps the
-- newest record it saw (its id and hash); the next one reports that record
-- missing or changed. Records written after the last verification and
-- removed before the next stay beyond any check made from inside the
-- database (that needs the head kept elsewhere, as a hardening step may).

CREATE TABLE audit_anchor (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    id   bigint NOT NULL,
    hash bytea NOT NULL,
    at   timestamptz NOT NULL
);

CREATE OR REPLACE FUNCTION audit_verify(OUT records bigint, OUT first_broken bigint,
                                        OUT reason text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r audit_log%ROWTYPE;
    a audit_anchor%ROWTYPE;
    v_prev bytea := decode(repeat('00', 32), 'hex');
    v_last bigint;
    v_seen boolean := false;
BEGIN
    SELECT * INTO a FROM audit_anchor FOR UPDATE;
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
            ELSIF r.id = a.id AND r.hash <> a.hash THEN
                first_broken := r.id;
                reason := 'not the record the verification of ' || a.at || ' saw (history rewritten)';
            END IF;
        END IF;
        v_seen := v_seen OR r.id = a.id;
        v_prev := r.hash;
        v_last := r.id;
    END LOOP;
    IF first_broken IS NULL AND a.id IS NOT NULL AND NOT v_seen THEN
        first_broken := a.id;
        reason := 'gone since the verification of ' || a.at
                  || ' saw it (the newest records were removed)';
    END IF;
    IF first_broken IS NULL AND v_last IS NOT NULL THEN
        INSERT INTO audit_anchor (id, hash, at) VALUES (v_last, v_prev, now())
        ON CONFLICT (one) DO UPDATE SET id = excluded.id, hash = excluded.hash, at = excluded.at;
    END IF;
END
$$;
