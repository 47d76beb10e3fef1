-- tracehunt store, schema version 2: analyst triage and the indexes the queries need.
-- An incident can be marked false positive (Store::set_false_positive); its sightings then count
-- as negative: left out of actor statistics, counted apart, exported with confidence 0.
-- false_positive_at is when the flag last changed (the STIX `modified` of the incident and its
-- sightings when later than their last hunt).

ALTER TABLE incidents ADD COLUMN false_positive INTEGER NOT NULL DEFAULT 0
    CHECK (false_positive IN (0, 1));
ALTER TABLE incidents ADD COLUMN false_positive_at TEXT;

CREATE INDEX detections_incident ON detections (incident_id);
CREATE INDEX sightings_group ON sightings (group_id);
CREATE INDEX sightings_incident ON sightings (incident_id);
CREATE INDEX incidents_first_seen ON incidents (first_seen);
CREATE INDEX ioc_hits_incident ON ioc_hits (incident_id);
