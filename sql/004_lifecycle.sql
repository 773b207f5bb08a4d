-- The lifecycle: declarations in full, the table of stages and actions, the
-- per-region business rules, sub-records (data resources, attachments,
-- experts, sign-offs, assets, events) and the transition function that
-- applies one action as a single transaction.

ALTER TABLE projects
    ADD COLUMN funding           text NOT NULL DEFAULT 'fiscal'
                                 CHECK (funding IN ('fiscal', 'self', 'mixed')),
    ADD COLUMN construction_mode text NOT NULL DEFAULT 'centralized'
                                 CHECK (construction_mode IN ('centralized', 'self-built')),
    ADD COLUMN exemption_reason  text NOT NULL DEFAULT '',
    ADD COLUMN urgent            boolean NOT NULL DEFAULT false,
    ADD COLUMN urgent_reason     text NOT NULL DEFAULT '',
    ADD COLUMN schedule_start    date,
    ADD COLUMN schedule_end      date,
    ADD COLUMN contact_name      text NOT NULL DEFAULT '',
    ADD COLUMN contact_phone     text NOT NULL DEFAULT '',
    ADD COLUMN contact_email     text NOT NULL DEFAULT '',
    ADD COLUMN summary           text NOT NULL DEFAULT '',
    ADD COLUMN created_by        text NOT NULL DEFAULT '',
    ADD COLUMN return_reason     text NOT NULL DEFAULT '',
    ADD COLUMN exit_candidate    boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT schedule_order CHECK (schedule_end IS NULL OR schedule_start IS NULL
                                         OR schedule_end >= schedule_start);
-- Text search in titles (ILIKE '%…%') over large lists.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX projects_title_trgm ON projects USING gin (title gin_trgm_ops);
CREATE INDEX projects_stage ON projects (stage, stage_since);
-- Lists are paged in code order within a unit or a region.
CREATE INDEX projects_unit_code ON projects (unit, code);
CREATE INDEX projects_region_code ON projects (region, code);
CREATE INDEX projects_year ON projects (year);

-- Stages and actions ---------------------------------------------------------

-- The one definition of what may happen: from a stage, an action, by one of
-- the roles, leads to a stage. Gates are checked by project_transition().
CREATE TABLE lifecycle_actions (
    from_stage   project_stage NOT NULL,
    action       text NOT NULL,
    to_stage     project_stage NOT NULL,
    roles        text[] NOT NULL,
    needs_reason boolean NOT NULL DEFAULT false,
    PRIMARY KEY (from_stage, action)
);
INSERT INTO lifecycle_actions (from_stage, action, to_stage, roles, needs_reason) VALUES
    ('draft',              'submit',             'endorsement',        '{submitter}', false),
    ('endorsement',        'endorse',            'registration',       '{cdo}', false),
    ('endorsement',        'return',             'draft',              '{cdo}', true),
    ('endorsement',        'withdraw',           'draft',              '{submitter}', false),
    ('registration',       'pass',               'prereview',          '{reviewer}', false),
    ('registration',       'return',             'draft',              '{reviewer}', true),
    ('registration',       'reject',             'rejected',           '{reviewer}', true),
    ('registration',       'withdraw',           'draft',              '{submitter}', false),
    ('prereview',          'pass',               'budget_review',      '{reviewer}', false),
    ('prereview',          'return',             'draft',              '{reviewer}', true),
    ('prereview',          'reject',             'rejected',           '{reviewer}', true),
    ('budget_review',      'pass',               'listing',            '{reviewer}', false),
    ('budget_review',      'return',             'draft',              '{reviewer}', true),
    ('budget_review',      'reject',             'rejected',           '{reviewer}', true),
    ('listing',            'pass',               'pre_implementation', '{reviewer}', false),
    ('listing',            'defer',              'listing',            '{reviewer}', false),
    ('pre_implementation', 'pass',               'approval',           '{reviewer}', false),
    ('pre_implementation', 'return',             'draft',              '{reviewer}', true),
    ('pre_implementation', 'reject',             'rejected',           '{reviewer}', true),
    ('approval',           'approve',            'construction',       '{director}', false),
    ('approval',           'reject',             'rejected',           '{director}', true),
    ('construction',       'start_trial',        'trial_operation',    '{submitter}', false),
    ('trial_operation',    'request_acceptance', 'acceptance',         '{submitter}', false),
    ('acceptance',         'accept',             'filing',             '{reviewer}', false),
    ('acceptance',         'return',             'trial_operation',    '{reviewer}', true),
    ('filing',             'complete_filing',    'operation',          '{submitter}', false),
    ('operation',          'retire',             'retired',            '{submitter,reviewer}', false),
    ('operation',          'force_exit',         'retired',            '{reviewer}', true);

-- Business rules, per region (a region without its own row uses the city's) --

CREATE TABLE rules_thresholds (
    region                 text PRIMARY KEY REFERENCES regions (code),
    expert_amount_fen      bigint NOT NULL CHECK (expert_amount_fen >= 0),
    expert_count           integer NOT NULL CHECK (expert_count BETWEEN 1 AND 50),
    joint_amount_fen       bigint NOT NULL CHECK (joint_amount_fen >= 0),
    joint_expert_count     integer NOT NULL CHECK (joint_expert_count BETWEEN 1 AND 50),
    expert_min_mean        integer NOT NULL CHECK (expert_min_mean BETWEEN 0 AND 100),
    change_director_pct    integer NOT NULL CHECK (change_director_pct BETWEEN 0 AND 100),
    trial_days             integer NOT NULL CHECK (trial_days BETWEEN 0 AND 3650),
    filing_overdue_days    integer NOT NULL CHECK (filing_overdue_days BETWEEN 0 AND 3650),
    monitoring_min_availability integer NOT NULL CHECK (monitoring_min_availability BETWEEN 0 AND 100),
    monitoring_abnormal_months  integer NOT NULL CHECK (monitoring_abnormal_months BETWEEN 1 AND 24)
);
INSERT INTO rules_thresholds VALUES ('321300', 50000000, 3, 500000000, 5, 60, 10, 90, 30, 95, 3);

-- Declaration windows: submit only inside the region's open window for the
-- project's year (urgent declarations with a reason excepted).
CREATE TABLE rules_windows (
    region text NOT NULL REFERENCES regions (code),
    year   integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    opens  date NOT NULL,
    closes date NOT NULL,
    PRIMARY KEY (region, year),
    CHECK (closes >= opens)
);
INSERT INTO rules_windows
SELECT '321300', y, make_date(y - 1, 1, 1), make_date(y, 12, 31)
  FROM generate_series(2024, 2030) AS y;

-- Materials an action needs attached (classified_only: for classified projects).
CREATE TABLE rules_materials (
    region          text NOT NULL REFERENCES regions (code),
    action          text NOT NULL,
    kind            text NOT NULL,
    classified_only boolean NOT NULL DEFAULT false,
    PRIMARY KEY (region, action, kind)
);
INSERT INTO rules_materials VALUES
    ('321300', 'submit', 'declaration_form', false),
    ('321300', 'submit', 'construction_plan', false),
    ('321300', 'submit', 'budget_detail', false),
    ('321300', 'submit', 'security_plan', false),
    ('321300', 'submit', 'secrecy_review', true),
    ('321300', 'accept', 'acceptance_report', false),
    ('321300', 'accept', 'test_report', false),
    ('321300', 'accept', 'security_assessment', false);

-- Departments whose sign-off a project needs: the three for large or
-- cross-department projects, secrecy for classified ones.
CREATE TABLE rules_signoff_units (
    region  text NOT NULL REFERENCES regions (code),
    purpose text NOT NULL CHECK (purpose IN ('joint', 'secrecy')),
    unit    text NOT NULL REFERENCES units (code),
    PRIMARY KEY (region, purpose, unit)
);
INSERT INTO rules_signoff_units VALUES
    ('321300', 'joint', '321300-DRC'), ('321300', 'joint', '321300-FIN'),
    ('321300', 'joint', '321300-CAC'), ('321300', 'secrecy', '321300-SEC');

-- The region whose rules apply to p_region: its own when it has any, else the city's.
-- Static queries (no EXECUTE) so PL/pgSQL keeps their plans.
CREATE FUNCTION rules_region(p_region text, p_table text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE v_found boolean;
BEGIN
    CASE p_table
    WHEN 'rules_thresholds' THEN
        v_found := EXISTS (SELECT 1 FROM rules_thresholds WHERE region = p_region);
    WHEN 'rules_materials' THEN
        v_found := EXISTS (SELECT 1 FROM rules_materials WHERE region = p_region);
    WHEN 'rules_signoff_units' THEN
        v_found := EXISTS (SELECT 1 FROM rules_signoff_units WHERE region = p_region);
    WHEN 'rules_windows' THEN
        v_found := EXISTS (SELECT 1 FROM rules_windows WHERE region = p_region);
    END CASE;
    IF v_found THEN
        RETURN p_region;
    END IF;
    RETURN (SELECT code FROM regions WHERE kind = 'city' LIMIT 1);
END
$$;

-- Sub-records ----------------------------------------------------------------

CREATE TABLE data_resources (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id   bigint NOT NULL REFERENCES projects (id),
    code         text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    source       text NOT NULL,
    share        text NOT NULL CHECK (share IN ('unconditional', 'conditional', 'none')),
    frequency    text NOT NULL,
    aggregated   boolean NOT NULL DEFAULT false,
    exemption_reason text NOT NULL DEFAULT '',
    UNIQUE (project_id, code)
);

CREATE TABLE project_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects (id),
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text NOT NULL,
    role        text NOT NULL,
    action      text NOT NULL,
    from_stage  project_stage,
    to_stage    project_stage NOT NULL,
    reason      text NOT NULL DEFAULT '',
    amount_fen  bigint,
    list_year   integer
);
CREATE INDEX project_events_project ON project_events (project_id, id);

CREATE TABLE attachments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id   bigint NOT NULL REFERENCES projects (id),
    kind         text NOT NULL CHECK (kind IN ('declaration_form', 'construction_plan',
                     'budget_detail', 'security_plan', 'secrecy_review', 'implementation_plan',
                     'acceptance_report', 'test_report', 'security_assessment',
                     'filing_document', 'other')),
    filename     text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    content_type text NOT NULL,
    size         bigint NOT NULL CHECK (size >= 0),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content      bytea NOT NULL,
    uploaded_by  text NOT NULL,
    uploaded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attachments_project ON attachments (project_id, kind);

-- The expert pool: directory users with the expert role, their unit and fields.
CREATE TABLE expert_pool (
    user_id text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 128),
    name    text NOT NULL,
    unit    text NOT NULL REFERENCES units (code),
    fields  text[] NOT NULL DEFAULT '{}',
    active  boolean NOT NULL DEFAULT true,
    cleared boolean NOT NULL DEFAULT false -- holds the classified clearance
);

CREATE TABLE expert_assignments (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    expert_id  text NOT NULL REFERENCES expert_pool (user_id),
    unit       text NOT NULL,
    score      integer CHECK (score BETWEEN 0 AND 100),
    opinion    text NOT NULL DEFAULT '',
    assigned_at timestamptz NOT NULL DEFAULT now(),
    scored_at  timestamptz,
    UNIQUE (project_id, expert_id)
);

CREATE TABLE signoffs (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    unit       text NOT NULL REFERENCES units (code),
    actor      text NOT NULL,
    approved   boolean NOT NULL,
    opinion    text NOT NULL DEFAULT '',
    at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, unit)
);

CREATE TABLE assets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id  bigint NOT NULL REFERENCES projects (id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind        text NOT NULL,
    value_fen   bigint NOT NULL CHECK (value_fen >= 0),
    registered_by text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now()
);

-- Scope ----------------------------------------------------------------------

-- Experts see the projects they are assigned to; joint reviewers those that
-- need their department's sign-off. Both read tables the policies of the
-- project tables depend on, so they run as the owner (no policy recursion).
CREATE FUNCTION itpm_is_assigned_expert(p_id bigint) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM expert_assignments
                    WHERE project_id = p_id AND expert_id = current_setting('itpm.user_id', true))
$$;

-- The departments (units) whose sign-off a project needs under its region's rules.
CREATE FUNCTION project_required_signoffs(p_region text, p_budget bigint, p_cross boolean,
                                          p_classified boolean)
RETURNS text[] LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT coalesce(array_agg(unit ORDER BY unit), '{}')
      FROM rules_signoff_units s
     WHERE s.region = rules_region(p_region, 'rules_signoff_units')
       AND ((s.purpose = 'joint'
             AND (p_cross OR p_budget >= (SELECT joint_amount_fen FROM rules_thresholds
                                           WHERE region = rules_region(p_region, 'rules_thresholds'))))
            OR (s.purpose = 'secrecy' AND p_classified))
$$;

DROP POLICY projects_read ON projects;
DROP POLICY projects_insert ON projects;
DROP POLICY projects_update ON projects;
DROP FUNCTION itpm_project_visible(bigint, text, text, boolean);
DROP FUNCTION itpm_project_writable(bigint, text, text, boolean);

-- The caller's scope, computed once per statement: the policies below call
-- these inside scalar sub-queries, which PostgreSQL evaluates once (an
-- InitPlan) instead of per row, and which let an index on region or unit
-- serve a scoped list.
CREATE FUNCTION itpm_cleared() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('itpm.classified', true), 'off') = 'on'
$$;

-- The caller's scope is worked out once, when the context is set, and kept
-- in settings the policies only read:
--   itpm.scope_all_read   every region: a reviewer or director of the city,
--                         the auditor, the admin
--   itpm.scope_all_write  every region, for writes: a reviewer or director of the city
--   itpm.scope_region     the region seen whole: a county admin's, a county
--                         reviewer's or director's (a city one's too)
--   itpm.scope_unit       the unit seen whole: a submitter's or a CDO's
CREATE OR REPLACE FUNCTION itpm_set_context(p_user text, p_unit text, p_region text,
                                            p_roles text, p_classified boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_roles text[] := string_to_array(coalesce(p_roles, ''), ',');
    v_gate boolean := v_roles && ARRAY['reviewer', 'director'];
    v_city boolean := false;
BEGIN
    -- Only a reviewer's or director's scope depends on the region's kind.
    IF v_gate THEN
        v_city := EXISTS (SELECT 1 FROM regions WHERE code = p_region AND kind = 'city');
    END IF;
    PERFORM set_config('itpm.user_id', p_user, true), set_config('itpm.unit', p_unit, true),
            set_config('itpm.region', p_region, true), set_config('itpm.roles', p_roles, true),
            set_config('itpm.classified', CASE WHEN p_classified THEN 'on' ELSE 'off' END, true),
            set_config('itpm.scope_all_read',
                       CASE WHEN (v_gate AND v_city) OR v_roles && ARRAY['auditor', 'admin']
                            THEN 'on' ELSE 'off' END, true),
            set_config('itpm.scope_all_write', CASE WHEN v_gate AND v_city THEN 'on' ELSE 'off' END,
                       true),
            set_config('itpm.scope_region',
                       CASE WHEN v_gate OR 'county_admin' = ANY (v_roles) THEN p_region ELSE '' END,
                       true),
            set_config('itpm.scope_unit',
                       CASE WHEN v_roles && ARRAY['submitter', 'cdo'] THEN p_unit ELSE '' END, true);
END
$$;

CREATE FUNCTION itpm_scope_all(p_writing boolean) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting(CASE WHEN p_writing THEN 'itpm.scope_all_write'
                                         ELSE 'itpm.scope_all_read' END, true), 'off') = 'on'
$$;

CREATE FUNCTION itpm_scope_region() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('itpm.scope_region', true), '')
$$;

CREATE FUNCTION itpm_scope_unit() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('itpm.scope_unit', true), '')
$$;

-- SPEC section 3. Own unit: submitter, cdo. Own region: county_admin, and a
-- reviewer or director of a county. Everything: a reviewer or director of the
-- city, the auditor, the admin (read-only). Assigned: experts (and, with the
-- evaluation issue, evaluators). Needing their sign-off: joint reviewers.
-- Classified projects need the clearance on top of all of these.
CREATE POLICY projects_read ON projects FOR SELECT USING (
    (NOT classified OR (SELECT itpm_cleared()))
    AND ((SELECT itpm_scope_all(false))
         OR region = (SELECT itpm_scope_region())
         OR unit = (SELECT itpm_scope_unit())
         OR ((SELECT itpm_has_role('expert')) AND itpm_is_assigned_expert(id))
         OR ((SELECT itpm_has_role('joint_reviewer'))
             AND (SELECT current_setting('itpm.unit', true))
                 = ANY (project_required_signoffs(region, budget_requested_fen,
                                                  cross_department, classified)))));

-- Writes to the project row itself: the same scope without the read-only roles.
CREATE FUNCTION itpm_project_writable(p_region text, p_unit text, p_classified boolean)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT (NOT p_classified OR itpm_cleared())
       AND (itpm_scope_all(true) OR p_region = itpm_scope_region() OR p_unit = itpm_scope_unit())
$$;

CREATE POLICY projects_insert ON projects FOR INSERT WITH CHECK (
    (NOT classified OR (SELECT itpm_cleared()))
    AND ((SELECT itpm_scope_all(true)) OR region = (SELECT itpm_scope_region())
         OR unit = (SELECT itpm_scope_unit())));
CREATE POLICY projects_update ON projects FOR UPDATE
    USING ((NOT classified OR (SELECT itpm_cleared()))
           AND ((SELECT itpm_scope_all(true)) OR region = (SELECT itpm_scope_region())
                OR unit = (SELECT itpm_scope_unit())))
    WITH CHECK ((NOT classified OR (SELECT itpm_cleared()))
                AND ((SELECT itpm_scope_all(true)) OR region = (SELECT itpm_scope_region())
                     OR unit = (SELECT itpm_scope_unit())));

-- A sub-record is visible exactly when its project is (the sub-query is
-- itself filtered by the projects policy).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['data_resources', 'project_events', 'attachments', 'signoffs',
                             'assets', 'expert_assignments'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING '
                       '(EXISTS (SELECT 1 FROM projects p WHERE p.id = project_id))',
                       t || '_scope', t);
    END LOOP;
END
$$;
-- Forced on every table but the assignments, which the expert check above
-- reads as the owner.
ALTER TABLE data_resources FORCE ROW LEVEL SECURITY;
ALTER TABLE project_events FORCE ROW LEVEL SECURITY;
ALTER TABLE attachments FORCE ROW LEVEL SECURITY;
ALTER TABLE signoffs FORCE ROW LEVEL SECURITY;
ALTER TABLE assets FORCE ROW LEVEL SECURITY;

-- Transitions ----------------------------------------------------------------

-- Whether a written text is empty once every kind of white space is gone
-- (ideographic spaces included, as Chinese input methods type them).
CREATE FUNCTION itpm_blank(p_text text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(regexp_replace(p_text, '[[:space:]\u3000\u00a0]+', '', 'g'), '') = ''
$$;

-- Raises a refusal the daemon turns into a problem document: SQLSTATE
-- IT<http status>, the message is the rule (or a short reason), the detail
-- is shown to the user.
CREATE FUNCTION itpm_refuse(p_status integer, p_rule text, p_detail text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'IT' || p_status::text, MESSAGE = p_rule, DETAIL = p_detail;
END
$$;

-- Materials of p_action the project lacks.
CREATE FUNCTION project_missing_materials(p_id bigint, p_region text, p_classified boolean,
                                          p_action text)
RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(m.kind ORDER BY m.kind), '{}')
      FROM rules_materials m
     WHERE m.region = rules_region(p_region, 'rules_materials') AND m.action = p_action
       AND (NOT m.classified_only OR p_classified)
       AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.project_id = p_id AND a.kind = m.kind)
$$;

-- Expert scores a project needs under its region's thresholds.
CREATE FUNCTION project_required_experts(p_region text, p_budget bigint) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN p_budget >= t.joint_amount_fen THEN t.joint_expert_count
                WHEN p_budget >= t.expert_amount_fen THEN t.expert_count
                ELSE 0 END
      FROM rules_thresholds t WHERE t.region = rules_region(p_region, 'rules_thresholds')
$$;

-- Applies one action: lock, scope, role, version, stage, gates, then the new
-- stage and version, an event and an audit record; or raises and changes
-- nothing. Runs with the caller's scope (itpm_set_context) in force.
-- Refusals come in this order: 404 not visible, 403 role, 412 version, 409
-- stage, 422 reason, 403 not writable. A transition that goes through costs
-- one lock-and-read of the row, one look-up of the action and only the gate
-- queries of its own action.
CREATE FUNCTION project_transition(p_code text, p_action text, p_version integer,
                                   p_reason text, p_amount_fen bigint, p_list_year integer,
                                   p_addr text, p_rid text)
RETURNS TABLE (stage project_stage, version integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    p projects%ROWTYPE;
    a lifecycle_actions%ROWTYPE;
    v_actor text := current_setting('itpm.user_id', true);
    v_roles text[] := string_to_array(coalesce(current_setting('itpm.roles', true), ''), ',');
    v_role text;
    v_allowed text;
    v_writable boolean;
    v_missing text[];
    v_needed integer;
    v_scored integer;
    v_assigned integer;
    v_mean numeric;
    v_window boolean;
    v_t rules_thresholds%ROWTYPE;
    v_list_year integer;
    -- FOR UPDATE applies the update policy too: a caller who may change the
    -- project finds it locked (concurrent transitions of one project take
    -- turns, and every check below sees its latest version). The update
    -- goes through this cursor (WHERE CURRENT OF) and reads no column, so
    -- it is checked against the update policy only: the read policy holds
    -- already for the row fetched here.
    c_project CURSOR FOR SELECT * FROM projects WHERE code = p_code FOR UPDATE;
BEGIN
    OPEN c_project;
    FETCH c_project INTO p;
    v_writable := FOUND;
    IF NOT v_writable THEN
        -- Anyone else reads it without the lock, to tell 404 (not visible) from 403.
        CLOSE c_project;
        SELECT * INTO p FROM projects WHERE code = p_code;
        IF NOT FOUND THEN
            PERFORM itpm_refuse(404, 'not_found', 'no such project');
        END IF;
    END IF;
    SELECT * INTO a FROM lifecycle_actions l WHERE l.from_stage = p.stage AND l.action = p_action;
    IF FOUND THEN
        FOREACH v_allowed IN ARRAY a.roles LOOP
            IF v_allowed = ANY (v_roles) THEN
                v_role := v_allowed;
                EXIT;
            END IF;
        END LOOP;
    END IF;
    IF v_role IS NULL THEN
        -- Not possible here for this caller: a role that may never take this
        -- action, at any stage, gets 403; otherwise the stage is wrong.
        IF NOT EXISTS (SELECT 1 FROM lifecycle_actions l
                        WHERE l.action = p_action AND l.roles && v_roles) THEN
            IF NOT EXISTS (SELECT 1 FROM lifecycle_actions l WHERE l.action = p_action) THEN
                PERFORM itpm_refuse(422, 'unknown_action', 'no such action: ' || left(p_action, 40));
            END IF;
            PERFORM itpm_refuse(403, 'forbidden', 'your role may not ' || p_action);
        END IF;
    END IF;
    IF p.version <> p_version THEN
        PERFORM itpm_refuse(412, 'stale_version',
                            'the project changed since version ' || p_version);
    END IF;
    IF v_role IS NULL THEN
        PERFORM itpm_refuse(409, 'wrong_stage',
                            p_action || ' is not possible at stage ' || p.stage::text);
    END IF;
    IF a.needs_reason AND itpm_blank(p_reason) THEN
        PERFORM itpm_refuse(422, 'reason_required', p_action || ' needs a written reason');
    END IF;
    -- Read-only scope is not enough to act.
    IF NOT v_writable THEN
        PERFORM itpm_refuse(403, 'forbidden', 'this project is outside what you may change');
    END IF;

    IF p_action = 'submit' THEN
        -- The region's own window for the year, else the city's for that year.
        SELECT coalesce(
                 (SELECT current_date BETWEEN w.opens AND w.closes FROM rules_windows w
                   WHERE w.region = p.region AND w.year = p.year),
                 (SELECT current_date BETWEEN w.opens AND w.closes FROM rules_windows w
                    JOIN regions r ON r.code = w.region AND r.kind = 'city'
                   WHERE w.year = p.year),
                 false)
          INTO v_window;
        IF NOT v_window THEN
            IF NOT p.urgent THEN
                PERFORM itpm_refuse(409, 'window_closed',
                                    'the declaration window for ' || p.year || ' is not open');
            ELSIF itpm_blank(p.urgent_reason) THEN
                PERFORM itpm_refuse(409, 'urgent_reason_missing',
                                    'an urgent declaration outside the window needs a reason');
            END IF;
        END IF;
        v_missing := project_missing_materials(p.id, p.region, p.classified, 'submit');
        IF cardinality(v_missing) > 0 THEN
            PERFORM itpm_refuse(409, 'materials_missing',
                                'missing: ' || array_to_string(v_missing, ', '));
        END IF;
    ELSIF p_action = 'endorse' THEN
        IF current_setting('itpm.unit', true) IS DISTINCT FROM p.unit THEN
            PERFORM itpm_refuse(409, 'endorsement_unit_mismatch',
                                'only the chief data officer of ' || p.unit || ' endorses it');
        END IF;
    ELSIF p.stage = 'prereview' AND p_action = 'pass' THEN
        v_needed := project_required_experts(p.region, p.budget_requested_fen);
        IF v_needed > 0 THEN
            SELECT count(*), count(score), avg(score) INTO v_assigned, v_scored, v_mean
              FROM expert_assignments e WHERE e.project_id = p.id;
            SELECT * INTO v_t FROM rules_thresholds
             WHERE region = rules_region(p.region, 'rules_thresholds');
            IF v_assigned < v_needed OR v_scored < v_assigned THEN
                PERFORM itpm_refuse(409, 'experts_incomplete',
                                    v_scored || ' of ' || greatest(v_needed, v_assigned)
                                    || ' expert scores are in');
            END IF;
            IF v_mean < v_t.expert_min_mean THEN
                PERFORM itpm_refuse(409, 'expert_mean_low',
                                    'the mean expert score ' || round(v_mean, 2)
                                    || ' is below ' || v_t.expert_min_mean);
            END IF;
        END IF;
    ELSIF p.stage = 'budget_review' AND p_action = 'pass' THEN
        IF p_amount_fen IS NULL THEN
            PERFORM itpm_refuse(422, 'amount_required', 'pass at budget_review needs the approved amount');
        END IF;
        IF p_amount_fen > p.budget_requested_fen THEN
            PERFORM itpm_refuse(409, 'budget_exceeds_request',
                                'the approved amount is above the requested budget');
        END IF;
    ELSIF p.stage = 'pre_implementation' AND p_action = 'pass' THEN
        IF p.construction_mode = 'self-built' AND itpm_blank(p.exemption_reason) THEN
            PERFORM itpm_refuse(409, 'exemption_reason_missing',
                                'self-built construction needs an exemption reason');
        END IF;
        SELECT array_agg(u ORDER BY u) INTO v_missing
          FROM unnest(project_required_signoffs(p.region, p.budget_requested_fen,
                                                p.cross_department, p.classified)) u
         WHERE NOT EXISTS (SELECT 1 FROM signoffs s
                            WHERE s.project_id = p.id AND s.unit = u AND s.approved);
        IF cardinality(v_missing) > 0 THEN
            PERFORM itpm_refuse(409, 'signoffs_missing',
                                'missing sign-off of ' || array_to_string(v_missing, ', '));
        END IF;
    ELSIF p_action = 'request_acceptance' THEN
        SELECT * INTO v_t FROM rules_thresholds
         WHERE region = rules_region(p.region, 'rules_thresholds');
        IF p.stage_since > now() - make_interval(days => v_t.trial_days) THEN
            PERFORM itpm_refuse(409, 'trial_period_not_over',
                                'trial operation lasts at least ' || v_t.trial_days || ' days');
        END IF;
    ELSIF p_action = 'accept' THEN
        v_missing := project_missing_materials(p.id, p.region, p.classified, 'accept');
        IF cardinality(v_missing) > 0 THEN
            PERFORM itpm_refuse(409, 'materials_missing',
                                'missing: ' || array_to_string(v_missing, ', '));
        END IF;
        IF EXISTS (SELECT 1 FROM data_resources d WHERE d.project_id = p.id
                      AND NOT d.aggregated AND itpm_blank(d.exemption_reason)) THEN
            PERFORM itpm_refuse(409, 'data_not_aggregated',
                                'every declared data resource must be aggregated or exempted');
        END IF;
    ELSIF p_action = 'complete_filing' THEN
        IF NOT EXISTS (SELECT 1 FROM assets s WHERE s.project_id = p.id) THEN
            PERFORM itpm_refuse(409, 'assets_missing', 'register at least one asset first');
        END IF;
        v_missing := ARRAY(SELECT 'filing_document' WHERE NOT EXISTS (
            SELECT 1 FROM attachments t WHERE t.project_id = p.id AND t.kind = 'filing_document'));
        IF cardinality(v_missing) > 0 THEN
            PERFORM itpm_refuse(409, 'materials_missing', 'missing: filing_document');
        END IF;
    ELSIF p_action = 'force_exit' THEN
        IF NOT p.exit_candidate THEN
            PERFORM itpm_refuse(409, 'not_exit_candidate',
                                'the project is not marked an exit candidate');
        END IF;
    END IF;

    -- p is the locked row as it stands.
    v_list_year := CASE WHEN p_action = 'defer' THEN coalesce(p.list_year, p.year) + 1
                        WHEN p.stage = 'listing' AND p_action = 'pass'
                        THEN coalesce(p_list_year, p.list_year, p.year)
                        ELSE p.list_year END;
    UPDATE projects SET
        stage = a.to_stage,
        version = p.version + 1,
        stage_since = CASE WHEN a.to_stage <> p.stage THEN now() ELSE p.stage_since END,
        updated_at = now(),
        budget_approved_fen = CASE WHEN p.stage = 'budget_review' AND p_action = 'pass'
                                   THEN p_amount_fen ELSE p.budget_approved_fen END,
        list_year = v_list_year,
        return_reason = CASE WHEN p_action = 'return' THEN p_reason ELSE p.return_reason END
     WHERE CURRENT OF c_project;
    -- The cursor's name is fixed: closed, it is free for the next call in
    -- this transaction.
    CLOSE c_project;
    IF p_action NOT IN ('defer', 'pass') OR p.stage <> 'listing' THEN
        v_list_year := p_list_year;
    END IF;
    INSERT INTO project_events (project_id, actor, role, action, from_stage, to_stage, reason,
                                amount_fen, list_year)
    VALUES (p.id, v_actor, v_role, p_action, p.stage, a.to_stage, coalesce(p_reason, ''),
            p_amount_fen, v_list_year);
    PERFORM audit_append(v_actor, v_role, p_addr, p_rid, 'transition:' || p_action,
                         'project:' || p.code,
                         p.stage::text || ' -> ' || a.to_stage::text || ' version ' || p.version
                         || ' -> ' || (p.version + 1)
                         || coalesce(' amount_fen=' || p_amount_fen, '')
                         || coalesce(' list_year=' || v_list_year, ''));
    stage := a.to_stage;
    version := p.version + 1;
    RETURN NEXT;
END
$$;

-- Declarations ---------------------------------------------------------------

-- Creates a project with its data resources. The serial comes from the
-- region-year counter row, locked until commit: codes have no gaps and no
-- duplicates however many are created at once. An existing system declared
-- by a reviewer or county admin enters at operation; everything else is a
-- draft of its unit.
CREATE FUNCTION project_create(p_unit text, p_year integer, p_title text, p_category text,
                               p_classified boolean, p_soe boolean, p_public boolean,
                               p_cross boolean, p_vertical boolean, p_key boolean,
                               p_urgent boolean, p_urgent_reason text, p_budget_fen bigint,
                               p_funding text, p_mode text, p_exemption text, p_start date,
                               p_end date, p_contact_name text, p_contact_phone text,
                               p_contact_email text, p_summary text,
                               p_res_code text[], p_res_name text[], p_res_source text[],
                               p_res_share text[], p_res_frequency text[],
                               p_res_aggregated boolean[], p_addr text, p_rid text)
RETURNS TABLE (code text, version integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_region text;
    v_serial integer;
    v_code text;
    v_id bigint;
    v_actor text := current_setting('itpm.user_id', true);
    v_stage project_stage := 'draft';
    v_role text := 'submitter';
BEGIN
    SELECT region INTO v_region FROM units WHERE units.code = p_unit;
    IF v_region IS NULL THEN
        PERFORM itpm_refuse(422, 'unknown_unit', 'no such unit: ' || p_unit);
    END IF;
    IF p_category = 'existing' AND (itpm_has_role('reviewer') OR itpm_has_role('county_admin')) THEN
        v_stage := 'operation';
        v_role := CASE WHEN itpm_has_role('reviewer') THEN 'reviewer' ELSE 'county_admin' END;
    ELSIF NOT itpm_has_role('submitter') THEN
        PERFORM itpm_refuse(403, 'forbidden',
                            'only a submitter declares; reviewers and county admins register existing systems');
    END IF;
    IF NOT itpm_project_writable(v_region, p_unit, p_classified)
       OR (v_role = 'submitter' AND current_setting('itpm.unit', true) <> p_unit) THEN
        PERFORM itpm_refuse(403, 'forbidden', 'you may not declare for ' || p_unit);
    END IF;
    INSERT INTO project_serials AS s (region, year, last_serial) VALUES (v_region, p_year, 1)
    ON CONFLICT (region, year) DO UPDATE SET last_serial = s.last_serial + 1
    RETURNING s.last_serial INTO v_serial;
    v_code := v_region || '-' || p_year || '-' || lpad(v_serial::text, 5, '0');
    INSERT INTO projects (code, region, unit, year, serial, title, category, stage, classified,
                          soe, public_institution, cross_department, vertical, key_project,
                          urgent, urgent_reason, budget_requested_fen, funding, construction_mode,
                          exemption_reason, schedule_start, schedule_end, contact_name,
                          contact_phone, contact_email, summary, created_by)
    VALUES (v_code, v_region, p_unit, p_year, v_serial, p_title, p_category::project_category,
            v_stage, p_classified, p_soe, p_public, p_cross, p_vertical, p_key, p_urgent,
            coalesce(p_urgent_reason, ''), p_budget_fen, p_funding, p_mode,
            coalesce(p_exemption, ''), p_start, p_end, coalesce(p_contact_name, ''),
            coalesce(p_contact_phone, ''), coalesce(p_contact_email, ''),
            coalesce(p_summary, ''), v_actor)
    RETURNING id INTO v_id;
    INSERT INTO data_resources (project_id, code, name, source, share, frequency, aggregated)
    SELECT v_id, r.c, r.n, r.s, r.sh, r.f, r.a
      FROM unnest(p_res_code, p_res_name, p_res_source, p_res_share, p_res_frequency,
                  p_res_aggregated) AS r(c, n, s, sh, f, a);
    INSERT INTO project_events (project_id, actor, role, action, from_stage, to_stage)
    VALUES (v_id, v_actor, v_role, 'create', NULL, v_stage);
    PERFORM audit_append(v_actor, v_role, p_addr, p_rid, 'create', 'project:' || v_code,
                         'category=' || p_category || ' unit=' || p_unit || ' stage='
                         || v_stage::text || ' budget_fen=' || p_budget_fen);
    RETURN QUERY SELECT v_code, 1;
END
$$;

-- Replaces a draft's declaration (data resources included) when the caller
-- holds its current version.
CREATE FUNCTION project_update(p_code text, p_version integer, p_title text, p_year integer,
                               p_category text, p_classified boolean, p_soe boolean,
                               p_public boolean, p_cross boolean, p_vertical boolean,
                               p_key boolean, p_urgent boolean, p_urgent_reason text,
                               p_budget_fen bigint, p_funding text, p_mode text,
                               p_exemption text, p_start date, p_end date,
                               p_contact_name text, p_contact_phone text, p_contact_email text,
                               p_summary text, p_unit text,
                               p_res_code text[], p_res_name text[], p_res_source text[],
                               p_res_share text[], p_res_frequency text[],
                               p_res_aggregated boolean[], p_addr text, p_rid text)
RETURNS TABLE (code text, version integer)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    p projects%ROWTYPE;
    v_actor text := current_setting('itpm.user_id', true);
BEGIN
    SELECT * INTO p FROM projects WHERE projects.code = p_code;
    IF NOT FOUND THEN
        PERFORM itpm_refuse(404, 'not_found', 'no such project');
    END IF;
    IF NOT itpm_has_role('submitter') OR NOT itpm_project_writable(p.region, p.unit, p.classified)
       OR current_setting('itpm.unit', true) <> p.unit THEN
        PERFORM itpm_refuse(403, 'forbidden', 'only the declaring unit updates its draft');
    END IF;
    SELECT * INTO p FROM projects WHERE id = p.id FOR UPDATE;
    IF p.version <> p_version THEN
        PERFORM itpm_refuse(412, 'stale_version', 'the project changed since version ' || p_version);
    END IF;
    IF p.stage <> 'draft' THEN
        PERFORM itpm_refuse(409, 'wrong_stage', 'only a draft can be changed');
    END IF;
    IF p_unit <> p.unit OR p_year <> p.year THEN
        PERFORM itpm_refuse(422, 'immutable_field', 'unit and year are fixed by the project code');
    END IF;
    UPDATE projects AS t SET title = p_title, category = p_category::project_category,
           classified = p_classified, soe = p_soe, public_institution = p_public,
           cross_department = p_cross, vertical = p_vertical, key_project = p_key,
           urgent = p_urgent, urgent_reason = coalesce(p_urgent_reason, ''),
           budget_requested_fen = p_budget_fen, funding = p_funding, construction_mode = p_mode,
           exemption_reason = coalesce(p_exemption, ''), schedule_start = p_start,
           schedule_end = p_end, contact_name = coalesce(p_contact_name, ''),
           contact_phone = coalesce(p_contact_phone, ''),
           contact_email = coalesce(p_contact_email, ''), summary = coalesce(p_summary, ''),
           version = t.version + 1, updated_at = now()
     WHERE t.id = p.id;
    DELETE FROM data_resources WHERE project_id = p.id;
    INSERT INTO data_resources (project_id, code, name, source, share, frequency, aggregated)
    SELECT p.id, r.c, r.n, r.s, r.sh, r.f, r.a
      FROM unnest(p_res_code, p_res_name, p_res_source, p_res_share, p_res_frequency,
                  p_res_aggregated) AS r(c, n, s, sh, f, a);
    PERFORM audit_append(v_actor, 'submitter', p_addr, p_rid, 'update', 'project:' || p.code,
                         'version ' || p.version || ' -> ' || (p.version + 1));
    RETURN QUERY SELECT p.code, p.version + 1;
END
$$;

-- Privileges -------------------------------------------------------------------

GRANT SELECT ON lifecycle_actions, rules_thresholds, rules_windows, rules_materials,
                rules_signoff_units, expert_pool TO itpm_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON data_resources TO itpm_app;
GRANT SELECT, INSERT ON project_events, attachments, assets TO itpm_app;
GRANT SELECT, INSERT, UPDATE ON expert_assignments, signoffs TO itpm_app;
REVOKE ALL ON FUNCTION itpm_is_assigned_expert(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION itpm_is_assigned_expert(bigint) TO itpm_app;
