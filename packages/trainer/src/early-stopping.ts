// Early stopping on the validation loss: an evaluation improves when its loss is below the best
// so far by more than `minDelta`; after `patience` evaluations in a row without improvement,
// training stops. The best evaluation's step is the "best checkpoint".

export interface EarlyStoppingConfig {
  /** Evaluations without improvement before stopping. */
  patience: number;
  /** Smallest decrease of the validation loss that counts as an improvement. */
  minDelta: number;
}

export interface EarlyStoppingState {
  bestLoss: number;
  bestStep: number;
  /** Evaluations since the best one. */
  since: number;
}

export class BestTracker {
  state: EarlyStoppingState;

  constructor(
    private readonly config: EarlyStoppingConfig | null,
    state?: EarlyStoppingState,
  ) {
    this.state = state ?? { bestLoss: Number.POSITIVE_INFINITY, bestStep: -1, since: 0 };
  }

  /** Records one evaluation; says whether it is the new best and whether training should stop. */
  update(step: number, loss: number): { improved: boolean; stop: boolean } {
    const minDelta = this.config?.minDelta ?? 0;
    const improved = Number.isFinite(loss) && loss < this.state.bestLoss - minDelta;
    if (improved) this.state = { bestLoss: loss, bestStep: step, since: 0 };
    else this.state = { ...this.state, since: this.state.since + 1 };
    const stop = this.config !== null && this.state.since >= this.config.patience;
    return { improved, stop };
  }
}
