-- The node holding a queue entry's lease (NULL when not leased): a restarted node takes back its
-- own leases at once instead of waiting for them to expire.
ALTER TABLE queue ADD COLUMN lease_node TEXT;
