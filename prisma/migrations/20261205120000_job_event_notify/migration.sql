-- Every job event is announced (at commit) with its job's id, so that event streams wait for the
-- next one instead of polling (see packages/db/src/job-signals.ts).
CREATE FUNCTION crucible_job_event() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('crucible_job_event', NEW.job_id);
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER job_events_added AFTER INSERT ON job_events
  FOR EACH ROW EXECUTE FUNCTION crucible_job_event();
