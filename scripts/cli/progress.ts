// A progress bar on a terminal (stderr), nothing otherwise: pipes and --json get only results.

export function renderBar(done: number, total: number, label: string, width = 24): string {
  const ratio = total === 0 ? 1 : Math.min(1, done / total);
  const filled = Math.round(ratio * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${label}`;
}

export class Progress {
  private shown = false;
  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly enabled = Boolean(stream.isTTY),
  ) {}

  update(done: number, label: string) {
    if (!this.enabled) return;
    const columns = this.stream.columns ?? 80;
    this.stream.write(
      `\r${renderBar(done, this.total, label).slice(0, columns - 1).padEnd(columns - 1)}`,
    );
    this.shown = true;
  }

  end() {
    if (this.shown) this.stream.write('\n');
    this.shown = false;
  }
}
