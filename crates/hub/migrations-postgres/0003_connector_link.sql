-- What connectors announce on their link (/hubs/connector): their software, and for each data
-- source its kind and capabilities. A source a connector stops announcing stays (grants refer to
-- it) but is marked unavailable until it is announced again.
-- A connector created by its own registration (signed in through the device flow) has no
-- credential: its credential_digest is empty and client-credentials sign-in is refused for it.
ALTER TABLE connectors ADD COLUMN software TEXT NOT NULL DEFAULT '';
ALTER TABLE connectors ADD COLUMN registered_at BIGINT;

ALTER TABLE data_sources ADD COLUMN kind TEXT NOT NULL DEFAULT '';
ALTER TABLE data_sources ADD COLUMN capabilities TEXT; -- JSON as announced; NULL until announced
ALTER TABLE data_sources ADD COLUMN available BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE data_sources ADD COLUMN announced_at BIGINT;
