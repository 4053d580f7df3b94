-- AlterTable
ALTER TABLE "job_metrics" ADD COLUMN     "rewards" JSONB;
