export type {
  ApiKeyOptions,
  ApiKeyRevokeContext,
  ApiKeyRotateContext,
  ApiKeyRotation,
} from './api-key.js';
export { apiKey } from './api-key.js';
export type {
  AuthorizationCodeOptions,
  AuthorizationCodeSource,
  AuthorizationStorage,
  EndSessionOutcome,
  HandleRedirectOptions,
  IdTokenClaims,
  IdTokenOptions,
  LoginOptions,
  LogoutOptions,
  LogoutResult,
  SignInResult,
} from './authorization-code.js';
export { authorizationCode } from './authorization-code.js';
export type { ClientAuthMethod, PrivateKeyInput } from './client-auth.js';
export { ClientSecret } from './client-auth.js';
export type { ClientCredentialsOptions } from './client-credentials.js';
export { clientCredentials } from './client-credentials.js';
export type {
  CustomRevokeContext,
  CustomSourceContext,
  CustomSourceFunction,
  CustomSourceOptions,
  CustomTokenResult,
} from './custom.js';
export { customSource } from './custom.js';
export type { DeviceCodeOptions, DeviceCodePrompt } from './device-code.js';
export { deviceCode } from './device-code.js';
export type { AuthorizationServerMetadata } from './discovery.js';
export { clearDiscoveryCache } from './discovery.js';
export type { IntrospectionResult, IntrospectOptions } from './introspection.js';
export { introspect } from './introspection.js';
export type {
  OAuthEndpoints,
  OAuthSourceOptions,
  OAuthTokenSource,
  TokenTypeHint,
} from './oauth.js';
export type { RefreshTokenOptions } from './refresh-token.js';
export { refreshToken } from './refresh-token.js';
export type { ParseTokenResponseOptions } from './token-response.js';
export { parseTokenResponse } from './token-response.js';
export type {
  DpopContext,
  RevokedToken,
  SkewClock,
  SourceBinding,
  SourceContext,
  SourceInfo,
  SourceKind,
  TokenHeader,
  TokenSource,
} from './types.js';
