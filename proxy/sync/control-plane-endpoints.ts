/**
 * The control planes a node may call (CONTROL_PLANE_URL lists one or more, all on one
 * database): calls are spread over those that answered last time, one that fails rests for
 * a while, and once its rest is over the next call tries it again, so a control plane that
 * comes back is used again without any probe of its own.
 */
export interface ControlPlaneEndpoints {
  /** Base URLs to try for one call, in order: those in service (taking turns), then those resting. */
  order(): string[];
  /** A call to `url` could not get an answer (unreachable, timed out, or a 5xx). */
  failed(url: string): void;
  worked(url: string): void;
  /** Those resting now, for logs. */
  resting(): string[];
}

export interface ControlPlaneEndpointsOptions {
  urls: readonly string[];
  /** How long a control plane that failed is tried only after the others. */
  restMs: number;
  now(): number;
}

export function createControlPlaneEndpoints({ urls, restMs, now }: ControlPlaneEndpointsOptions): ControlPlaneEndpoints {
  if (urls.length === 0) throw new Error('at least one control plane URL is needed');
  const restingUntil = new Map<string, number>();
  let turn = 0;
  return {
    order() {
      const at = now();
      const inService: string[] = [];
      const resting: string[] = [];
      // The first in service changes every call, so calls spread over every control plane.
      const start = turn++ % urls.length;
      for (let i = 0; i < urls.length; i++) {
        const url = urls[(start + i) % urls.length]!;
        if ((restingUntil.get(url) ?? 0) > at) resting.push(url);
        else inService.push(url);
      }
      resting.sort((a, b) => restingUntil.get(a)! - restingUntil.get(b)!);
      return inService.concat(resting);
    },
    failed(url) {
      restingUntil.set(url, now() + restMs);
    },
    worked(url) {
      restingUntil.delete(url);
    },
    resting: () => [...restingUntil].filter(([, until]) => until > now()).map(([url]) => url),
  };
}
