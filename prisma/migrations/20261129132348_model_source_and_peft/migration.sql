-- AlterTable
ALTER TABLE "models" ADD COLUMN     "peft" JSONB,
ADD COLUMN     "source" TEXT NOT NULL DEFAULT 'trained';
