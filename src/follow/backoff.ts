// A wait that stop() can cut short: the pause between a follower's (or replica's) retries.

export class Pause {
  private wake: (() => void) | null = null;

  /** Resolves after `ms`, or at once when interrupt() is called meanwhile. */
  for(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wake = null; resolve(); }, ms);
      this.wake = () => { clearTimeout(t); this.wake = null; resolve(); };
    });
  }

  interrupt(): void {
    this.wake?.();
  }
}
