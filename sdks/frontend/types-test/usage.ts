// Compile-only checks of the published declarations (src/terapi.d.ts): the documented uses
// type-check, and the misuses a TypeScript user should hear about are errors.
import Terapi, { AuthError, type AuthErrorType, type AuthResult } from '@terapihq/frontend';

const terapi = new Terapi({ host: 'https://connect.example.com', connectSessionToken: 'cst_x' });
const byPublicKey = new Terapi({ publicKey: 'pk_x', width: 600, height: 700, debug: true });

async function documentedCalls(): Promise<AuthResult[]> {
  const results: AuthResult[] = [];
  results.push(await terapi.auth('github', 'user-42'));
  results.push(await terapi.auth('zendesk', 'user-42', { params: { subdomain: 'acme' }, scopes: ['read'] }));
  results.push(await terapi.auth('zendesk', { scopes: 'read,write', authorizationParams: { prompt: 'consent' } }));
  results.push(await terapi.auth('openai', 'user-42', { credentials: { apiKey: 'sk-...' } }));
  results.push(await terapi.auth('jira-basic', 'user-42', { credentials: { username: 'ada', password: 'pw' } }));
  void terapi.auth('github', 'user-42', { redirect: true, returnUrl: 'https://app.example.com/done' });
  const fromRedirect = await Terapi.handleRedirectResult(window.location.href);
  if (fromRedirect !== null) results.push(fromRedirect);
  return results;
}

function handle(error: unknown): string {
  if (error instanceof AuthError) {
    const type: AuthErrorType = error.type;
    switch (type) {
      case 'window_closed':
      case 'blocked_by_browser':
        return 'try again';
      default:
        return `${error.type}: ${error.message}`;
    }
  }
  if (error instanceof Terapi.AuthError) return error.type;
  return 'unexpected';
}

const chained: Terapi = terapi.setSession('cst_new').setSession(null);
const base: string = byPublicKey.host;

// @ts-expect-error an integration id is required
void terapi.auth();
// @ts-expect-error credentials are an apiKey or a username (and password)
void terapi.auth('openai', 'user-42', { credentials: { token: 'x' } });
// @ts-expect-error connection config values are scalars
void terapi.auth('zendesk', 'user-42', { params: { subdomain: ['a', 'b'] } });
// @ts-expect-error the result is read-only data, not a string
const wrong: string = await terapi.auth('github', 'user-42');
// @ts-expect-error the host is a string
void new Terapi({ host: 3003 });

export { base, chained, documentedCalls, handle, wrong };
