-- Assistance hardening (issue 7): where each request came from, digests for floods, retention.

-- The network and country a request came from, written when it is processed: a repeat from somewhere new
-- is news for the admins, and one source asking about several people is a warning sign.
ALTER TABLE assistance_request ADD COLUMN network TEXT;
ALTER TABLE assistance_request ADD COLUMN country TEXT;
-- Set while the admins have yet to hear of a request in a digest (a flood); cleared when the digest is queued.
ALTER TABLE assistance_request ADD COLUMN digest_due_at BIGINT;

CREATE INDEX assistance_request_joined ON assistance_request (joined_to);
CREATE INDEX assistance_request_ip ON assistance_request (client_ip, created_at);
CREATE INDEX assistance_request_network ON assistance_request (network, created_at);
CREATE INDEX assistance_request_digest ON assistance_request (digest_due_at);
CREATE INDEX assistance_request_closed ON assistance_request (closed_at);
-- Retention removes sign-in events by age.
CREATE INDEX sign_in_event_at ON sign_in_event (at);
