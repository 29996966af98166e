-- Problems that did not fail a task (contract violations under
-- `contracts: warn`): a JSON array of strings, NULL when there are none.
ALTER TABLE tasks ADD COLUMN warnings JSONB;
