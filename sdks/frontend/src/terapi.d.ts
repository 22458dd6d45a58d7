// Type declarations for @terapihq/frontend (src/terapi.js).

/** The codes an AuthError's `type` takes; the gateway may add codes of its own. */
export type AuthErrorType =
  | 'invalid_host_url'
  | 'missing_auth_token'
  | 'invalid_request'
  | 'missing_credentials'
  | 'blocked_by_browser'
  | 'window_closed'
  | 'network_error'
  | 'unknown_error'
  | 'connect_session_required'
  | 'invalid_connect_session_token'
  | 'connect_session_expired'
  | 'invalid_public_key'
  | 'integration_not_allowed'
  | 'invalid_connection_id'
  | (string & {});

/** What every failed call rejects (or throws) with. */
export declare class AuthError extends Error {
  constructor(type: AuthErrorType, message?: string);
  /** A stable code to switch on, e.g. 'window_closed'. */
  readonly type: AuthErrorType;
}

export interface TerapiOptions {
  /**
   * Terapi's base URL (http or https, optionally with a path prefix). Defaults to the origin
   * the SDK script was served from, else the page's origin.
   */
  host?: string;
  /** A connect session token your backend created (recommended). Wins over publicKey. */
  connectSessionToken?: string;
  /** The environment's public key; refused when the environment requires connect sessions. */
  publicKey?: string;
  /** Popup width in pixels (default 500). */
  width?: number;
  /** Popup height in pixels (default 600). */
  height?: number;
  /** Log each step with console.debug (never the token, key or password). */
  debug?: boolean;
}

/** Replacements for the browser globals, for tests. */
export interface TerapiEnvironment {
  window?: any;
  fetch?: (input: string, init?: any) => Promise<any>;
  setTimeout?: (callback: () => void, ms: number) => any;
  clearTimeout?: (id: any) => void;
  setInterval?: (callback: () => void, ms: number) => any;
  clearInterval?: (id: any) => void;
  randomUUID?: () => string;
  console?: { debug?: (...args: any[]) => void; log?: (...args: any[]) => void };
}

export interface ApiKeyCredentials {
  apiKey: string;
}

export interface BasicCredentials {
  username: string;
  password?: string;
}

export interface AuthOptions {
  /** Connection configuration the integration asks for, e.g. { subdomain: 'acme' }. */
  params?: Record<string, string | number | boolean>;
  /** OAuth scopes to request on top of the integration's own. */
  scopes?: string[] | string;
  /** Extra query parameters for the provider's authorization URL. */
  authorizationParams?: Record<string, string>;
  /** The end user's credentials for API_KEY or BASIC integrations: no popup is opened. */
  credentials?: ApiKeyCredentials | BasicCredentials;
  /** Navigate this tab instead of opening a popup (mobile browsers, webviews). */
  redirect?: boolean;
  /** Where Terapi sends the tab back in redirect mode (default: the current URL). */
  returnUrl?: string;
}

export interface AuthResult {
  integrationId: string;
  connectionId: string;
}

export declare class Terapi {
  constructor(options?: TerapiOptions, env?: TerapiEnvironment);

  /** The base URL requests go to, without a trailing slash. */
  readonly host: string;
  readonly width: number;
  readonly height: number;

  /** Swap the connect session token, e.g. after the previous one expired. */
  setSession(connectSessionToken: string | null): this;

  /**
   * Authorize an integration for a connection. In redirect mode the promise never settles
   * (the tab navigates away): read the result with Terapi.handleRedirectResult().
   */
  auth(integrationId: string, connectionId?: string, options?: AuthOptions): Promise<AuthResult>;
  auth(integrationId: string, options: AuthOptions): Promise<AuthResult>;

  /**
   * Read the terapi_* parameters a redirect-mode flow appended to the return URL. Resolves null
   * when the URL carries no result; removes the parameters from the address bar.
   */
  static handleRedirectResult(url?: string, env?: Pick<TerapiEnvironment, 'window'>): Promise<AuthResult | null>;

  static readonly AuthError: typeof AuthError;
}

export default Terapi;
