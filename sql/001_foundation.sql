-- Foundation: regions, units and projects with their lifecycle stage.
-- Runs as the schema owner (itpm_owner); the daemon connects as itpm_app,
-- which owns nothing and gets only the privileges granted here.

CREATE TABLE regions (
    code        text PRIMARY KEY CHECK (code ~ '^[0-9]{6}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    kind        text NOT NULL CHECK (kind IN ('city', 'district', 'county', 'zone')),
    parent      text REFERENCES regions (code),
    code_source text NOT NULL,
    CHECK ((kind = 'city') = (parent IS NULL))
);

CREATE TABLE units (
    code   text PRIMARY KEY CHECK (code ~ '^[0-9]{6}-[A-Z0-9]{2,16}$'),
    name   text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    region text NOT NULL REFERENCES regions (code),
    kind   text NOT NULL CHECK (kind IN ('department', 'public_institution', 'soe')),
    review_role text NOT NULL DEFAULT '',
    CHECK (left(code, 6) = region)
);
CREATE INDEX units_region ON units (region);

CREATE TYPE project_stage AS ENUM (
    'draft', 'endorsement', 'registration', 'prereview', 'budget_review', 'listing',
    'pre_implementation', 'approval', 'construction', 'trial_operation', 'acceptance',
    'filing', 'operation', 'retired', 'rejected');

CREATE TYPE project_category AS ENUM ('new', 'upgrade', 'operation', 'existing');

-- Codes are {region}-{year}-{serial}; the next serial is taken from this row
-- under its row lock, so codes have no gaps and no duplicates.
CREATE TABLE project_serials (
    region      text NOT NULL REFERENCES regions (code),
    year        integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    last_serial integer NOT NULL DEFAULT 0 CHECK (last_serial BETWEEN 0 AND 99999),
    PRIMARY KEY (region, year)
);

CREATE TABLE projects (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code                 text NOT NULL UNIQUE CHECK (code ~ '^[0-9]{6}-[0-9]{4}-[0-9]{5}$'),
    region               text NOT NULL REFERENCES regions (code),
    unit                 text NOT NULL REFERENCES units (code),
    year                 integer NOT NULL CHECK (year BETWEEN 2000 AND 2100),
    serial               integer NOT NULL CHECK (serial BETWEEN 1 AND 99999),
    title                text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    category             project_category NOT NULL,
    stage                project_stage NOT NULL DEFAULT 'draft',
    classified           boolean NOT NULL DEFAULT false,
    soe                  boolean NOT NULL DEFAULT false,
    public_institution   boolean NOT NULL DEFAULT false,
    cross_department     boolean NOT NULL DEFAULT false,
    vertical             boolean NOT NULL DEFAULT false,
    key_project          boolean NOT NULL DEFAULT false,
    -- Money is integer fen (1 CNY = 100 fen), never a float.
    budget_requested_fen bigint NOT NULL CHECK (budget_requested_fen BETWEEN 0 AND 100000000000000),
    budget_approved_fen  bigint CHECK (budget_approved_fen >= 0
                                       AND budget_approved_fen <= budget_requested_fen),
    list_year            integer CHECK (list_year BETWEEN 2000 AND 2100),
    version              integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    stage_since          timestamptz NOT NULL DEFAULT now(),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (region, year, serial),
    CHECK (code = region || '-' || year || '-' || lpad(serial::text, 5, '0'))
);
CREATE INDEX projects_region_stage ON projects (region, stage);
CREATE INDEX projects_unit ON projects (unit);

GRANT USAGE ON SCHEMA public TO itpm_app;
GRANT SELECT ON regions, units TO itpm_app;
GRANT SELECT, INSERT, UPDATE ON projects, project_serials TO itpm_app;
