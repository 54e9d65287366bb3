// A browser app (a public client: no secret) keeping a refresh token fresh and calling its API
// through ky. Sign-in itself (authorization code + PKCE) arrives with a later release.
import { createWarden, ReauthRequiredError, refreshToken } from 'tokenwarden';

declare const initialRefreshToken: string;
declare function showSignIn(): void;

const warden = createWarden();
const me = warden.register('me', {
  source: refreshToken({
    issuer: 'https://auth.example.com',
    clientId: 'spa',
    refreshToken: initialRefreshToken,
  }),
  origins: ['https://api.example.com'],
});

warden.on('reauth-required', () => showSignIn());
warden.on('blocked', ({ reason, url }) => console.warn(`blocked ${url}: ${reason}`));

export async function loadProfile(): Promise<unknown> {
  try {
    return await me.ky({ prefix: 'https://api.example.com/' }).get('me').json();
  } catch (error) {
    if (error instanceof ReauthRequiredError) showSignIn();
    throw error;
  }
}
