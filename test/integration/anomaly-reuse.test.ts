// Refresh-token reuse against a real oidc-provider: when a copy of a refresh token the credential
// already rotated away is redeemed elsewhere, the server revokes the whole grant, and the
// credential's next refresh is answered invalid_grant: a critical `refresh-token-reuse` anomaly.
// Honest rotation raises none.
import { describe, expect, it } from 'vitest';
import { collect, refreshCredential, useOidcServer, useWarden } from '../support/harness.js';
import { findLeaks } from '../support/sentinel.js';

const server = useOidcServer();
const newWarden = useWarden();

/** Redeems `refreshToken` at the server as a thief holding the client's credentials would. */
async function redeem(refreshToken: string): Promise<{ status: number; error?: string }> {
  const op = server();
  const { clientId, clientSecret } = op.clients.refresh;
  const res = await fetch(op.tokenEndpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`)}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  const body = (await res.json()) as { error?: string };
  return { status: res.status, ...(body.error === undefined ? {} : { error: body.error }) };
}

describe('refresh-token reuse at oidc-provider', () => {
  it('raises a critical anomaly when a stolen, rotated-away refresh token is redeemed', async () => {
    const op = server();
    const minted = await op.mintRefreshToken();
    const warden = newWarden();
    const anomalies = collect(warden, 'anomaly');
    const refreshes = collect(warden, 'refresh');
    const reauth = collect(warden, 'reauth-required');
    const credential = refreshCredential(op, warden, 'victim', minted, {
      maxForcedRefreshesPerMinute: 100,
    });

    // Honest use: three rotations, API calls, no anomaly.
    await credential.getToken();
    for (let i = 0; i < 3; i++) {
      await credential.getToken({ forceRefresh: true });
      expect((await credential.fetch(`${op.resource.origin}/v1/me`)).status).toBe(200);
    }
    expect(refreshes.slice(1).every((e) => e.rotated)).toBe(true);
    expect(anomalies).toEqual([]);

    // A thief replays the first refresh token (copied before it was rotated away). The server
    // sees a reuse and revokes the whole grant, the credential's current refresh token included.
    expect(await redeem(minted.refreshToken)).toEqual({ status: 400, error: 'invalid_grant' });

    await expect(credential.getToken({ forceRefresh: true })).rejects.toMatchObject({
      code: 'ERR_REAUTH_REQUIRED',
    });
    expect(reauth.map((e) => e.error)).toEqual(['invalid_grant']);
    expect(anomalies).toHaveLength(1);
    expect(anomalies[0]).toMatchObject({
      id: 'victim',
      kind: 'refresh-token-reuse',
      severity: 'critical',
      evidence: { error: 'invalid_grant' },
    });
    expect(anomalies[0]?.evidence.sinceRotationMs).toBeGreaterThanOrEqual(0);
    expect(findLeaks(anomalies, [minted.refreshToken, minted.accessToken])).toEqual([]);
  });
});
