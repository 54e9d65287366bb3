// A Node service calling an API with the client credentials grant, authenticated with
// private_key_jwt (RFC 7523), refreshing on a timer and shutting down cleanly.
import { clientCredentials, createWarden, isTokenWardenError } from 'tokenwarden';

const privateKey = JSON.parse(process.env.REPORTS_CLIENT_JWK ?? '{}');

const warden = createWarden({
  logger: ({ level, message, fields }) => console.log(level, message, fields),
});

const reports = warden.register('reports', {
  source: clientCredentials({
    issuer: 'https://auth.example.com',
    clientId: 'reports-service',
    privateKey,
    clientAuth: 'private_key_jwt',
    scope: ['reports:read'],
    resource: 'https://reports.example.com',
  }),
  origins: ['https://reports.example.com'],
  keepFresh: true,
});

warden.on('refresh', ({ id, reason, expiresAt }) =>
  console.log(`${id}: new token (${reason}) until ${new Date(expiresAt).toISOString()}`),
);
warden.on('reauth-required', ({ id, error }) => console.error(`${id}: grant rejected (${error})`));

try {
  const api = reports.ky({ prefix: 'https://reports.example.com/v2/' });
  const daily = await api.get('daily').json();
  console.log(daily);
} catch (error) {
  if (isTokenWardenError(error)) console.error(error.code, error.message);
  else throw error;
} finally {
  await warden.close();
}
