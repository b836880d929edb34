-- Personal API tokens (issue 10): a token acts as its account, with the person's permissions at each call.
-- Only its keyed hash is stored; it is shown once, when it is made.
CREATE TABLE api_token (
    api_token_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    BIGINT  NOT NULL REFERENCES account (account_id),
    name          TEXT    NOT NULL,
    token_hash    TEXT    NOT NULL UNIQUE,
    -- An expert token stands in for the console's step-up: it lives an hour at most.
    expert        BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    expires_at    BIGINT  NOT NULL,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);
CREATE INDEX api_token_account ON api_token (account_id);
