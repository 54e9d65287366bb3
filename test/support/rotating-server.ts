import { HttpResponse, http } from 'msw';
import { setupServer } from 'msw/node';

/**
 * An msw token endpoint with refresh-token rotation and reuse detection, like a real server's:
 * `rt-0` is valid at first, each redemption issues `at-n`/`rt-n`, and a reused refresh token
 * gets `invalid_grant` and kills the whole grant. `api` answers 200 to every GET.
 */
export function rotatingServer(auth: string, api: string, options: { delayMs?: number } = {}) {
  let valid = new Set<string>(['rt-0']);
  let next = 1;
  let delayMs = options.delayMs ?? 0;
  const redeemed: string[] = [];
  const invalidGrants: string[] = [];
  const msw = setupServer(
    http.post(`${auth}/token`, async ({ request }) => {
      const presented = new URLSearchParams(await request.text()).get('refresh_token') ?? '';
      redeemed.push(presented);
      if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (!valid.has(presented)) {
        invalidGrants.push(presented);
        valid = new Set(); // reuse detected: the whole grant dies
        return HttpResponse.json({ error: 'invalid_grant' }, { status: 400 });
      }
      valid.delete(presented);
      const n = next++;
      valid.add(`rt-${n}`);
      return HttpResponse.json({
        access_token: `at-${n}`,
        refresh_token: `rt-${n}`,
        token_type: 'Bearer',
        expires_in: 3600,
      });
    }),
    http.get(`${api}/*`, () => HttpResponse.json({ ok: true })),
  );
  const initialDelay = delayMs;
  return {
    msw,
    redeemed,
    invalidGrants,
    setDelay(ms: number) {
      delayMs = ms;
    },
    reset() {
      valid = new Set(['rt-0']);
      next = 1;
      delayMs = initialDelay;
      redeemed.length = 0;
      invalidGrants.length = 0;
    },
  };
}
