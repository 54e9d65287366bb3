// What the benchmarks ran on: CPU, cores, memory, Node and the load average, which matters on a
// shared machine (a load above the core count means the figures were taken while competing).
import { arch, cpus, loadavg, platform, release, totalmem } from 'node:os';

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly v8: string;
}

export function machine(): Machine {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()} ${arch()}`,
    node: process.version,
    v8: process.versions.v8,
  };
}

/** The 1, 5 and 15 minute load averages, rounded to 2 decimals. */
export function load(): [number, number, number] {
  return loadavg().map((value) => Math.round(value * 100) / 100) as [number, number, number];
}
