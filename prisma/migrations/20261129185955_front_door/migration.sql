-- AlterTable
ALTER TABLE "projects" ADD COLUMN     "limits" JSONB;

-- AlterTable
ALTER TABLE "api_keys" ADD COLUMN     "revoked_at" TIMESTAMP(3),
ADD COLUMN     "scopes" TEXT[] DEFAULT ARRAY['read', 'write', 'admin']::TEXT[];

-- CreateTable
CREATE TABLE "webhook_endpoints" (
    "id" TEXT NOT NULL,
    "project_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "secret" TEXT NOT NULL,
    "event_types" TEXT[],
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "webhook_endpoints_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "webhook_deliveries" (
    "id" TEXT NOT NULL,
    "project_id" TEXT NOT NULL,
    "endpoint_id" TEXT NOT NULL,
    "event_id" TEXT NOT NULL,
    "event_type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_status_code" INTEGER,
    "last_error" TEXT,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMP(3),

    CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "webhook_endpoints_project_id_created_at_idx" ON "webhook_endpoints"("project_id", "created_at");

-- CreateIndex
CREATE INDEX "webhook_deliveries_status_next_attempt_at_idx" ON "webhook_deliveries"("status", "next_attempt_at");

-- CreateIndex
CREATE INDEX "webhook_deliveries_endpoint_id_created_at_idx" ON "webhook_deliveries"("endpoint_id", "created_at");

-- AddForeignKey
ALTER TABLE "webhook_endpoints" ADD CONSTRAINT "webhook_endpoints_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_endpoint_id_fkey" FOREIGN KEY ("endpoint_id") REFERENCES "webhook_endpoints"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Webhook outbox: a job or evaluation reaching succeeded / failed / cancelled writes one event per
-- subscribed endpoint in the same transaction as the status change, whoever made it (API, worker
-- or reconciler). The API's dispatcher sends them (see apps/api/src/webhooks).
CREATE FUNCTION crucible_webhook_outbox() RETURNS trigger AS $$
DECLARE
  v_type TEXT;
  v_event TEXT;
BEGIN
  IF NEW.status IS NOT DISTINCT FROM OLD.status OR NEW.status NOT IN ('succeeded', 'failed', 'cancelled') THEN
    RETURN NEW;
  END IF;
  v_type := TG_ARGV[0] || '.' || NEW.status;
  v_event := 'evt-' || substr(md5(random()::text || clock_timestamp()::text || NEW.id), 1, 24);
  INSERT INTO webhook_deliveries (id, project_id, endpoint_id, event_id, event_type, payload)
  SELECT 'whdel-' || substr(md5(random()::text || clock_timestamp()::text || e.id), 1, 24), NEW.project_id, e.id, v_event, v_type,
         jsonb_build_object('id', v_event, 'object', 'event', 'type', v_type,
                            'created_at', floor(extract(epoch FROM clock_timestamp()))::bigint,
                            'data', jsonb_build_object('id', NEW.id))
    FROM webhook_endpoints e
   WHERE e.project_id = NEW.project_id AND v_type = ANY (e.event_types);
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_webhook_outbox AFTER UPDATE OF status ON jobs
  FOR EACH ROW EXECUTE FUNCTION crucible_webhook_outbox('fine_tuning.job');

CREATE TRIGGER evaluations_webhook_outbox AFTER UPDATE OF status ON evaluations
  FOR EACH ROW EXECUTE FUNCTION crucible_webhook_outbox('evaluation');

-- Job changes are announced (at commit) so that API processes can cache job records and drop
-- them the moment they change (see packages/db/src/job-cache.ts).
CREATE FUNCTION crucible_job_changed() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('crucible_job_changed', COALESCE(NEW.id, OLD.id));
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_changed AFTER INSERT OR UPDATE OR DELETE ON jobs
  FOR EACH ROW EXECUTE FUNCTION crucible_job_changed();
