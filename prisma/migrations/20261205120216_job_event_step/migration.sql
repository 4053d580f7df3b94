-- AlterTable
ALTER TABLE "job_events" ADD COLUMN     "step" INTEGER;

-- Metrics events written before the column: their step is in their data.
UPDATE "job_events" SET "step" = ("data"->>'step')::int WHERE "type" = 'metrics' AND jsonb_typeof("data"->'step') = 'number';
