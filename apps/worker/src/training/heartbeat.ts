// A running job's heartbeat: written every JOB_HEARTBEAT_MS while the worker holds the job's
// lease. When the lease is gone the run is told why: the user cancelled or paused the job (this
// also covers a control message lost while Redis was down), or another worker took it over.
import type { Store } from '@crucible/db';
import type { StopReason } from '../control';

export class Heartbeat {
  private readonly timer: NodeJS.Timeout;
  private beating: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly job: { projectId: string; id: string },
    private readonly leaseId: string,
    intervalMs: number,
    private readonly onLost: (reason: StopReason) => void,
  ) {
    this.timer = setInterval(() => {
      this.beating ??= this.beat().finally(() => {
        this.beating = undefined;
      });
    }, intervalMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    try {
      const r = await this.store.jobs.heartbeat(this.job.projectId, this.job.id, this.leaseId);
      if (r.held) return;
      this.onLost(r.status === 'cancelled' ? 'cancel' : r.status === 'paused' ? 'pause' : 'superseded');
    } catch {
      // the database is unreachable: the run keeps its place and the next beat tries again
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
  }
}
