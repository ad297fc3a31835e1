-- No two hosts share a public key: an agent makes a new key for every enrolment
-- (`patchwarden_agent::agent::session::enroll`). The enrolment's replay check keeps the nonces
-- it has seen in the server's memory, which another server sharing the database, or the same
-- server after a restart, does not have: an enrolment request captured and sent again within
-- its signature window would have enrolled a second host with the agent's key and, with
-- `replace`, retired the host it copies. This key refuses it inside the enrolment's
-- transaction, on every server, before anything is retired or a token use counted.
CREATE UNIQUE INDEX hosts_public_key ON hosts (public_key);
