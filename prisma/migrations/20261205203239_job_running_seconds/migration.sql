-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "running_seconds" DOUBLE PRECISION NOT NULL DEFAULT 0,
ADD COLUMN     "running_since" TIMESTAMP(3);
