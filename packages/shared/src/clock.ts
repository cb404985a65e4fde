/** Time as a dependency, so policy and responses can be tested with a fixed clock. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export function fixedClock(at: Date | string): Clock {
  const date = new Date(at);
  return { now: () => new Date(date) };
}
