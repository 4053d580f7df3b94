-- AlterTable
ALTER TABLE "files" ADD COLUMN     "preparation" JSONB,
ADD COLUMN     "processed_at" TIMESTAMP(3),
ADD COLUMN     "report" JSONB,
ADD COLUMN     "source_file_id" TEXT;

-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "preparation" JSONB,
ADD COLUMN     "prepared_file_id" TEXT;

-- AlterTable
ALTER TABLE "job_checkpoints" ADD COLUMN     "best" BOOLEAN NOT NULL DEFAULT false;

-- CreateTable
CREATE TABLE "evaluations" (
    "id" TEXT NOT NULL,
    "project_id" TEXT NOT NULL,
    "model" TEXT NOT NULL,
    "file_id" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "options" JSONB NOT NULL,
    "metrics" JSONB,
    "samples" JSONB,
    "progress" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "error" JSONB,
    "metadata" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "started_at" TIMESTAMP(3),
    "finished_at" TIMESTAMP(3),

    CONSTRAINT "evaluations_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "evaluation_events" (
    "id" TEXT NOT NULL,
    "seq" BIGSERIAL NOT NULL,
    "project_id" TEXT NOT NULL,
    "evaluation_id" TEXT NOT NULL,
    "level" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "data" JSONB,
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "evaluation_events_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "evaluations_project_id_created_at_idx" ON "evaluations"("project_id", "created_at");

-- CreateIndex
CREATE INDEX "evaluations_project_id_file_id_idx" ON "evaluations"("project_id", "file_id");

-- CreateIndex
CREATE INDEX "evaluation_events_evaluation_id_seq_idx" ON "evaluation_events"("evaluation_id", "seq");

-- AddForeignKey
ALTER TABLE "evaluations" ADD CONSTRAINT "evaluations_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "evaluation_events" ADD CONSTRAINT "evaluation_events_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "projects"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "evaluation_events" ADD CONSTRAINT "evaluation_events_evaluation_id_fkey" FOREIGN KEY ("evaluation_id") REFERENCES "evaluations"("id") ON DELETE CASCADE ON UPDATE CASCADE;
