-- tracehunt store, schema version 1: the initial schema.
-- Times are TEXT in one fixed RFC 3339 UTC shape, 'YYYY-MM-DDTHH:MM:SS.ffffffZ' (microseconds,
-- always 27 characters), so text order is time order and MIN/MAX work on them.
-- JSON columns hold JSON text. Foreign keys are DEFERRABLE INITIALLY DEFERRED: within a hunt's
-- transaction a detection may name an incident added later; they are checked at COMMIT.

CREATE TABLE hunt_runs (
    id             INTEGER PRIMARY KEY,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    tool_version   TEXT NOT NULL,
    ruleset_hash   TEXT NOT NULL,
    attack_version TEXT NOT NULL,
    parameters     TEXT NOT NULL,            -- JSON
    events         INTEGER NOT NULL DEFAULT 0,
    detections     INTEGER NOT NULL DEFAULT 0,
    detections_new INTEGER NOT NULL DEFAULT 0,
    incidents      INTEGER NOT NULL DEFAULT 0
);

-- Coverage: which sources (by content) a hunt read, and the period their events span.
CREATE TABLE sources (
    id           INTEGER PRIMARY KEY,
    path         TEXT NOT NULL,
    content_hash TEXT NOT NULL,              -- sha256, lowercase hex
    format       TEXT NOT NULL,
    first_event  TEXT,
    last_event   TEXT,
    events_read  INTEGER NOT NULL,
    records_lost INTEGER NOT NULL,
    hunt_id      INTEGER NOT NULL REFERENCES hunt_runs(id) DEFERRABLE INITIALLY DEFERRED,
    UNIQUE (content_hash, hunt_id)
);

CREATE TABLE rules (
    rule_id      TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    title        TEXT NOT NULL,
    level        TEXT NOT NULL,
    PRIMARY KEY (rule_id, content_hash)
) WITHOUT ROWID;

CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,            -- deterministic id from the caller
    stix_id     TEXT NOT NULL UNIQUE,        -- assigned on first insert, never changed
    first_seen  TEXT,
    last_seen   TEXT,
    hosts       TEXT NOT NULL,               -- JSON array of strings
    users       TEXT NOT NULL,               -- JSON array of strings
    max_level   TEXT NOT NULL,
    detections  INTEGER NOT NULL,
    tactics     TEXT NOT NULL,               -- JSON array of strings
    techniques  TEXT NOT NULL,               -- JSON array of strings
    verdict     TEXT NOT NULL,
    confident   INTEGER NOT NULL CHECK (confident IN (0, 1)),
    first_hunt  INTEGER NOT NULL REFERENCES hunt_runs(id) DEFERRABLE INITIALLY DEFERRED,
    created_at  TEXT NOT NULL,               -- started_at of first_hunt
    updated_at  TEXT NOT NULL                -- started_at of the last hunt that stored it
);

CREATE TABLE detections (
    id          INTEGER PRIMARY KEY,
    rule_id     TEXT NOT NULL,
    event_key   BLOB NOT NULL CHECK (length(event_key) = 16),
    time        TEXT,
    host        TEXT,
    source      TEXT NOT NULL,
    level       TEXT NOT NULL,
    incident_id TEXT REFERENCES incidents(id) DEFERRABLE INITIALLY DEFERRED,
    hunt_id     INTEGER NOT NULL REFERENCES hunt_runs(id) DEFERRABLE INITIALLY DEFERRED,
    UNIQUE (event_key, rule_id)             -- key first: random bytes, comparisons end early
);

CREATE TABLE entities (
    kind        TEXT NOT NULL,               -- user, ip, logon_id, process_guid, hash, domain
    value       TEXT NOT NULL,
    incident_id TEXT NOT NULL REFERENCES incidents(id) DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (kind, value, incident_id)
) WITHOUT ROWID;

CREATE TABLE attributions (
    incident_id      TEXT NOT NULL REFERENCES incidents(id) DEFERRABLE INITIALLY DEFERRED,
    rank             INTEGER NOT NULL CHECK (rank >= 1),
    group_id         TEXT NOT NULL,
    group_name       TEXT NOT NULL,
    probability      REAL NOT NULL,
    confidence       INTEGER NOT NULL CHECK (confidence BETWEEN 0 AND 100),
    confidence_label TEXT NOT NULL,
    evidence         TEXT NOT NULL,          -- JSON
    PRIMARY KEY (incident_id, rank)
);

CREATE TABLE sightings (
    id          INTEGER PRIMARY KEY,
    stix_id     TEXT NOT NULL UNIQUE,
    group_id    TEXT NOT NULL,
    group_name  TEXT NOT NULL,
    state       TEXT,                        -- suspected state sponsor, optional
    incident_id TEXT NOT NULL REFERENCES incidents(id) DEFERRABLE INITIALLY DEFERRED,
    rank        INTEGER NOT NULL CHECK (rank >= 1),
    confidence  INTEGER NOT NULL CHECK (confidence BETWEEN 0 AND 100),
    first_seen  TEXT,
    last_seen   TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (group_id, incident_id)
);

-- One row per indicator: its stable STIX id.
CREATE TABLE indicators (
    indicator_type TEXT NOT NULL,
    value          TEXT NOT NULL,
    stix_id        TEXT NOT NULL UNIQUE,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (indicator_type, value)
) WITHOUT ROWID;

CREATE TABLE ioc_hits (
    id             INTEGER PRIMARY KEY,
    incident_id    TEXT REFERENCES incidents(id) DEFERRABLE INITIALLY DEFERRED,
    indicator_type TEXT NOT NULL,
    value          TEXT NOT NULL,
    feed           TEXT NOT NULL,
    actor          TEXT,                     -- ATT&CK group id or name from the feed
    time           TEXT,
    host           TEXT,
    hunt_id        INTEGER NOT NULL REFERENCES hunt_runs(id) DEFERRABLE INITIALLY DEFERRED,
    FOREIGN KEY (indicator_type, value) REFERENCES indicators(indicator_type, value)
        DEFERRABLE INITIALLY DEFERRED
);
-- NULL time/host count as one value for uniqueness.
CREATE UNIQUE INDEX ioc_hits_unique
    ON ioc_hits (indicator_type, value, coalesce(time, ''), coalesce(host, ''));

CREATE INDEX attributions_group ON attributions (group_id);
CREATE INDEX entities_incident ON entities (incident_id);
CREATE INDEX sources_hunt ON sources (hunt_id);
