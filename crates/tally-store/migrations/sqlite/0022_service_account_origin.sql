-- Which child site's sync set a user's service-account classification (its code), or NULL when
-- an administrator here set it. A child sends up every classification its administrators made
-- with each sync; one it no longer sends was reset to automatic there, and the parent resets
-- exactly those it holds from that child, never its own administrators' (issue 19).
ALTER TABLE users ADD COLUMN service_account_set_by TEXT;
