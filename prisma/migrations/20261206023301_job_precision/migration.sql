-- AlterTable
ALTER TABLE "jobs" ADD COLUMN     "precision" TEXT;
