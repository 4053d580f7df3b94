-- AlterTable
ALTER TABLE "files" ADD COLUMN     "processing_attempts" INTEGER NOT NULL DEFAULT 0;
