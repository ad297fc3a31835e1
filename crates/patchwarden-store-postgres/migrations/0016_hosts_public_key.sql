-- The enrolment's look-up of its public key. An agent makes a new key for every enrolment
-- (`patchwarden_agent::agent::session::enroll`), so an enrolment naming a key a host already
-- has is the same request sent again: to another server sharing the database, or to this one
-- after a restart, neither of which knows its nonce (an enrolment has no host yet, so its nonce
-- is kept in the receiving server's memory only). The enrolment's transaction refuses it
-- (`tokens::enroll`) before a use is counted or, with `replace`, a host retired.
--
-- Not a unique index: a database upgraded from before this check may already hold two hosts
-- with one key (such an enrolment was possible until now), and the migration must run on it.
CREATE INDEX hosts_public_key ON hosts (public_key);
