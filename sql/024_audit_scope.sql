-- The audit trail keeps a classified project from those who may not see it.
--
-- An auditor without the clearance got 404 for a classified project but read
-- its title, unit and budget in the audit records about it (object
-- `project:CODE`), which also told them that it exists. A record about a
-- project is now read only by whoever may read the project: the policy asks
-- the project's own read policy, with the caller's settings. Other records
-- (sessions, rules, the expert pool, batches) read as before. The chain
-- check runs as the owner, for whom the policy is not forced: it still
-- reads every record.

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;

CREATE POLICY audit_log_read ON audit_log FOR SELECT USING (
    object NOT LIKE 'project:%'
    OR EXISTS (SELECT 1 FROM projects p WHERE p.code = substr(audit_log.object, 9)));
