-- The client addresses a key may be used from, as canonical CIDRs written by the control
-- plane (lib/cidr.ts); empty: any address.
ALTER TABLE api_keys ADD COLUMN allowed_client_cidrs text[] NOT NULL DEFAULT '{}';
