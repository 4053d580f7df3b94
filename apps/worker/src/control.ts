// Stop requests from the API (cancel, pause) arrive on this deployment's control channel in
// Redis; each running job has an AbortController here, aborted with the reason. The job's
// heartbeat notices a cancel or pause too (when the message was lost while Redis was down).
import { type ControlMessage, controlChannel } from '@crucible/domain';
import type { Redis } from 'ioredis';

/** Why a run stops early: the user's request, the worker's shutdown, or another worker took the job. */
export type StopReason = ControlMessage['action'] | 'shutdown' | 'superseded';

export class JobControl {
  private readonly running = new Map<string, AbortController>();

  constructor(private readonly queuePrefix: string) {}

  async listen(sub: Redis): Promise<void> {
    const channel = controlChannel(this.queuePrefix);
    await sub.subscribe(channel); // ioredis subscribes again by itself after a reconnect
    sub.on('message', (ch: string, raw: string) => {
      if (ch !== channel) return;
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
