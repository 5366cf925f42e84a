-- A data source's stable key on its connector (docs/protocol.md, `Register`: `sourceKeys`),
-- chosen by the connector when the source is added and kept when it is renamed: the hub finds
-- the source by its key, so a renamed source keeps its id and every grant on it. NULL for
-- sources announced before keys existed and for sources an administrator added; the first
-- registration that gives a key adopts the keyless source of the same name, so the grants
-- already given carry over.
ALTER TABLE data_sources ADD COLUMN source_key TEXT;
CREATE UNIQUE INDEX data_sources_by_key ON data_sources (connector_id, source_key)
    WHERE source_key IS NOT NULL;
