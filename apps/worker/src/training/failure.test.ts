import { describe, expect, it } from 'vitest';
import { internalFailureMessage } from './failure';

describe('internalFailureMessage', () => {
  it('never passes internal text to the tenant: a database error names neither paths nor code', () => {
    const prisma = Object.assign(
      new Error(
        'Invalid `prisma.jobMetric.create()` invocation in\n/srv/crucible/packages/db/src/repositories/jobs.ts:412:7\n\n  409 await tx.jobMetric.create(',
      ),
      {
        name: 'PrismaClientKnownRequestError',
      },
    );
    const m = internalFailureMessage(prisma, 'ftjob-abc', 40);
    expect(m).toBe('training failed at step 40: internal error (see the worker log for job ftjob-abc)');
    expect(m).not.toMatch(/prisma|\/srv|jobs\.ts/i);
  });

  it('names running out of memory, the cause a tenant can act on', () => {
    expect(internalFailureMessage(new RangeError('Array buffer allocation failed'), 'ftjob-x', 3)).toMatch(/ran out of memory at step 3; lower batch_size/);
  });
});
