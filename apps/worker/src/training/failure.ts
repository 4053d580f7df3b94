// The message a failed job shows its tenant when the cause is not the job's own input.
/**
 * What a tenant is told of an unexpected failure: no internal text (a database message carries
 * server paths and code), only what to do; the detail is in the worker's log under the job's id.
 * Running out of memory is the one cause a tenant can act on, so it is named.
 */
export function internalFailureMessage(err: unknown, jobId: string, step: number): string {
  const m = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  if (/out of memory|allocation failed|Invalid array length|heap limit/i.test(m)) {
    return `training ran out of memory at step ${step}; lower batch_size or block_size, or use a smaller model`;
  }
  return `training failed at step ${step}: internal error (see the worker log for job ${jobId})`;
}
