// Writing a job event, shared by the job repository and the fenced writes of a worker run.
import { ID_PREFIX, type NewJobEvent, newId } from '@crucible/domain';
import type { Prisma, PrismaClient } from '../../generated/client';

/** A Prisma client or the client of an interactive transaction. */
export type Tx = Omit<PrismaClient, '$connect' | '$disconnect' | '$on' | '$transaction' | '$extends'>;

export async function insertEvent(tx: Tx, projectId: string, jobId: string, message: string, opts: NewJobEvent = {}): Promise<void> {
  await tx.jobEvent.create({
    data: {
      id: newId(ID_PREFIX.event),
      projectId,
      jobId,
      level: opts.level ?? 'info',
      type: opts.type ?? 'message',
      message,
      data: opts.data as Prisma.InputJsonValue | undefined,
      step: opts.type === 'metrics' ? opts.data.step : null,
    },
  });
}
