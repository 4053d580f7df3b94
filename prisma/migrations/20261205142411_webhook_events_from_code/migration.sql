-- Webhook events are declared in TypeScript (packages/domain/src/schemas/webhooks.ts). A delivery
-- keeps the resource its event is about; its body is built from the delivery by webhookEvent()
-- when it is sent or listed, no longer stored as JSON made by SQL.
ALTER TABLE "webhook_deliveries" ADD COLUMN "resource_id" TEXT;
UPDATE "webhook_deliveries" SET "resource_id" = "payload" -> 'data' ->> 'id';
ALTER TABLE "webhook_deliveries" ALTER COLUMN "resource_id" SET NOT NULL;
ALTER TABLE "webhook_deliveries" DROP COLUMN "payload";

-- The outbox trigger function now lives in packages/db/src/webhook-outbox.ts, which writes it from
-- those declarations; the deploy that applies this migration installs it in the same transaction.
DROP TRIGGER IF EXISTS "jobs_webhook_outbox" ON "jobs";
DROP TRIGGER IF EXISTS "evaluations_webhook_outbox" ON "evaluations";
DROP FUNCTION IF EXISTS crucible_webhook_outbox();
