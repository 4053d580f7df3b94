-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "ranks" JSONB,
ADD COLUMN     "workers" INTEGER NOT NULL DEFAULT 1;
