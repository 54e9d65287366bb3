import { describe, expect, it } from 'vitest';
import { createSkewClock } from '../../../src/internal/clock.js';

const LOCAL = Date.UTC(2024, 0, 1, 12, 0, 0);
const date = (offsetMs: number) => new Date(LOCAL + offsetMs).toUTCString();

describe('createSkewClock', () => {
  it('starts at zero and reads the local clock', () => {
    const clock = createSkewClock({ now: () => LOCAL });
    expect(clock.skewMs).toBe(0);
    expect(clock.now()).toBe(LOCAL);
  });

  it('learns a server clock that runs ahead or behind', () => {
    const ahead = createSkewClock();
    ahead.observe(date(120_000), LOCAL);
    expect(ahead.skewMs).toBe(120_500);
    const behind = createSkewClock();
    behind.observe(date(-30_000), LOCAL);
    expect(behind.skewMs).toBe(-29_500);
  });

  it('treats offsets within the Date resolution as no skew', () => {
    const clock = createSkewClock();
    clock.observe(date(1_000), LOCAL);
    expect(clock.skewMs).toBe(0);
    clock.observe(date(-1_000), LOCAL);
    expect(clock.skewMs).toBe(0);
  });

  it.each([null, '', 'yesterday', 'Mon, 99 Foo 2024 99:99:99 GMT', 'x'.repeat(100)])(
    'ignores the garbage date %j',
    (header) => {
      const clock = createSkewClock();
      clock.observe(date(60_000), LOCAL);
      clock.observe(header, LOCAL);
      expect(clock.skewMs).toBe(60_500);
    },
  );

  it('ignores absurd offsets and non-finite receipt times', () => {
    const clock = createSkewClock();
    clock.observe(new Date(0).toUTCString(), LOCAL);
    clock.observe(date(400 * 86_400_000), LOCAL);
    clock.observe(date(60_000), Number.NaN);
    expect(clock.skewMs).toBe(0);
  });

  it('takes the median, so one wrong server cannot move it', () => {
    const clock = createSkewClock();
    clock.observe(date(60_000), LOCAL);
    clock.observe(date(60_000), LOCAL);
    clock.observe(date(-3_600_000), LOCAL);
    expect(clock.skewMs).toBe(60_500);
  });
});
