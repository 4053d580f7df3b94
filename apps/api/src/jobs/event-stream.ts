// A job's events as Server-Sent Events: every event from the start, then each new one as it is
// written, until the job settles (then `[DONE]`). Driven by the database's notifications
// (JobSignals): the stream reads when the job has a new event or a change, not on a timer; a
// comment line keeps idle connections open. A database outage keeps the stream open, and it picks
// up where it was. Every open stream ends, with a comment, when the API shuts down.
import type { ServerResponse } from 'node:http';
import { isSettled, TransientError } from '@crucible/domain';
import type { Actor } from '../auth';
import type { Deps } from '../deps';
import { eventObject, getJob } from './service';

/** How long a stream waits for a notification before it reads anyway (and sends a keep-alive). */
const IDLE_MS = 15_000;

export class JobEventStreams {
  private readonly open = new Map<ServerResponse, AbortController>();

  constructor(private readonly deps: Pick<Deps, 'store' | 'jobCache' | 'jobSignals'>) {}

  /** Writes the job's events to `res` until the job settles, the client leaves or the API closes. */
  async stream(actor: Actor, id: string, res: ServerResponse): Promise<void> {
    const { store, jobSignals } = this.deps;
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    this.open.set(res, gone);
    try {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      let seq = -1n;
      while (!gone.signal.aborted) {
        // registered before reading: an event written while this reads ends the wait at once
        const next = jobSignals.next(id, IDLE_MS, gone.signal);
        let read = 0;
        try {
          // the status first: a job's last events commit with its status, so once it is seen
          // settled, the read that follows has every event
          const job = await getJob(this.deps, actor, id);
          const rows = await store.jobs.eventsSince(actor.projectId, id, seq);
          for (const e of rows) {
            res.write(`data: ${JSON.stringify(eventObject(e))}\n\n`);
            seq = e.seq;
          }
          read = rows.length;
          if (isSettled(job.status) && read === 0) {
            res.end('data: [DONE]\n\n');
            return;
          }
        } catch (err) {
          if (!(err instanceof TransientError)) throw err;
          res.write(': waiting for the database\n\n');
        }
        if (read > 0) continue; // more may have come meanwhile: read again at once
        if (!(await next) && !gone.signal.aborted) res.write(': no new event\n\n'); // keeps idle connections open
      }
    } finally {
      this.open.delete(res);
    }
  }

  /** Ends every open stream (the client may reconnect to another API process). */
  closeAll(): void {
    for (const [res, gone] of this.open) {
      res.end(': the server is shutting down; reconnect to resume\n\n');
      gone.abort();
    }
  }
}
