-- The per-view change counters are no longer read: served serials follow content
-- (dns_zone_serials, migration 0012). Backups made before this migration still restore: their
-- rows of this table are skipped (postern_store::backup::schema::DROPPED).
DROP TABLE dns_generations;
