// Stop requests from the API (cancel, pause) arrive on a Redis channel; each running job has an
// AbortController here, aborted with the action as its reason.
import { CONTROL_CHANNEL, type ControlMessage } from '@crucible/domain';
import type { Redis } from 'ioredis';

export type StopReason = ControlMessage['action'] | 'shutdown';

export class JobControl {
  private readonly running = new Map<string, AbortController>();

  async listen(sub: Redis): Promise<void> {
    await sub.subscribe(CONTROL_CHANNEL);
    sub.on('message', (channel: string, raw: string) => {
      if (channel !== CONTROL_CHANNEL) return;
      try {
        const msg = JSON.parse(raw) as ControlMessage;
        this.running.get(msg.jobId)?.abort(msg.action);
      } catch {
        // ignore malformed messages
      }
    });
  }

  register(jobId: string): AbortController {
    const ctl = new AbortController();
    this.running.set(jobId, ctl);
    return ctl;
  }

  release(jobId: string): void {
    this.running.delete(jobId);
  }

  /** Stops every running job (worker shutdown): each saves a checkpoint to resume from. */
  stopAll(): void {
    for (const ctl of this.running.values()) ctl.abort('shutdown' satisfies StopReason);
  }
}
