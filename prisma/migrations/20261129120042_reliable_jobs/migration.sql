-- AlterTable
ALTER TABLE "files" ADD COLUMN     "state" TEXT NOT NULL DEFAULT 'processed';

-- AlterTable
ALTER TABLE "jobs" DROP COLUMN "resume_key",
ADD COLUMN     "heartbeat_at" TIMESTAMP(3),
ADD COLUMN     "lease_id" TEXT,
ADD COLUMN     "updated_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- CreateIndex
CREATE INDEX "files_state_created_at_idx" ON "files"("state", "created_at");

-- CreateIndex
CREATE INDEX "jobs_status_idx" ON "jobs"("status");
